"""The `adrec tune` job: search, summarise, save and export the best model.

Needs the `tune` extra (`pip install "keras-adrec[tune]"`: keras-tuner,
tensorboard, scikit-learn). An output directory `DIR` holds:

- `search/`: KerasTuner's project (oracle state, one `trial_N/` per trial
  with its `trial.json` and best-epoch weights);
- `search_config.json`: what the search is (data, preset, space, tuner,
  epochs, seed); a rerun must match it;
- `trials.md`, `trials.csv`, `trials.json`: one row per trial: id, status,
  exact validation AUC and logloss at its best epoch, hyperparameters;
- `best_hyperparameters.json`: the best trial's id, AUC, hyperparameters
  and the resulting preset fields;
- `baseline.json` (with `baseline=True`): the preset's defaults trained
  the same way as the trials;
- `best_model/`: a model directory as `adrec train` writes it (so `adrec
  evaluate --model DIR/best_model` works);
- `serving/<version>/`: the SavedModel of
  `keras_adrec.export.export_for_serving`.

Rerunning the same job resumes the search (`keras_adrec.tuning.search`).
"""

import dataclasses
import json
import pathlib

import keras

from keras_adrec import data as adrec_data
from keras_adrec.export import export_for_serving
from keras_adrec.jobs import settings as checks
from keras_adrec.models.presets import RankingPreset
from keras_adrec.models.presets import get_preset
from keras_adrec.training import run_folder
from keras_adrec.training import run_writes
from keras_adrec.training.metrics import binary_metrics
from keras_adrec.training.model_directory import MODEL_DIRECTORY_FILES
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.model_directory import staged_output
from keras_adrec.tuning.ranking_hypermodel import RankingHyperModel
from keras_adrec.tuning.search import PROJECT_NAME
from keras_adrec.tuning.search import SEARCH_CONFIG_FILE
from keras_adrec.tuning.search import SUMMARY_FILES
from keras_adrec.tuning.search import TUNERS
from keras_adrec.tuning.search import best_trial
from keras_adrec.tuning.search import check_resume
from keras_adrec.tuning.search import is_chief
from keras_adrec.tuning.search import is_worker
from keras_adrec.tuning.search import run_search
from keras_adrec.tuning.search import train_defaults
from keras_adrec.tuning.search import trial_rows
from keras_adrec.tuning.search import write_summary
from keras_adrec.tuning.search_space import AdRecSearchSpace

BEST_MODEL_DIR = "best_model"
SERVING_DIR = "serving"
BASELINE_FILE = "baseline.json"
# Every top-level name `tune` writes into its output folder.
OUTPUT_NAMES = (
    PROJECT_NAME,
    SEARCH_CONFIG_FILE,
    *SUMMARY_FILES.values(),
    BASELINE_FILE,
    BEST_MODEL_DIR,
    SERVING_DIR,
)


def _baseline(path, hypermodel, loaded, epochs, search_config, verbose):
    """`train_defaults`, cached in `path` for this search's settings."""
    path = pathlib.Path(path)
    if path.is_file():
        cached = json.loads(path.read_text())
        settings = json.loads(json.dumps(search_config))
        if cached.get("search_config") == settings:
            return cached["result"]
    result = train_defaults(
        hypermodel, loaded.train, loaded.val, epochs, verbose
    )
    path.write_text(
        json.dumps({"search_config": search_config, "result": result})
    )
    return result


def save_best_model(tuner, hypermodel, loaded, output, run_config):
    """Write the best trial's model in the `adrec train` layout.

    Args:
        tuner: the tuner after its search.
        hypermodel: the searched `RankingHyperModel`.
        loaded: the `keras_adrec.data.RankingData` searched (in memory).
        output: the model directory to write.
        run_config: the data part of `config.json` (`data`, `val_data`,
            `val_fraction`, `split_mode`, `seed`, `on_bad_lines`).

    Returns:
        The validation metrics of the saved model (`metrics.json`).
    """
    best = best_trial(tuner)
    if best is None:
        raise RuntimeError(
            "No trial completed, so there is no best model to save; see "
            "the trial messages in trials.json."
        )
    # A best model written before run markers existed is ours too.
    with staged_output(
        output,
        overwrite=True,
        legacy=lambda folder: (
            ModelDirectory(folder).is_complete() and MODEL_DIRECTORY_FILES
        ),
    ) as staging:
        return _write_best_model(
            staging, best, tuner, hypermodel, loaded, run_config
        )


def _write_best_model(path, best, tuner, hypermodel, loaded, run_config):
    run = ModelDirectory(path)
    model = tuner.load_model(best)
    run.save_model(model)
    loaded.preprocessor.save_artifacts(run.preprocessing_path)
    values = dict(best.hyperparameters.values)
    fields = hypermodel.search_space.fields_for(values).replace(
        interaction=hypermodel.interaction
    )
    config = dict(run_config)
    config["preset"] = fields.to_dict()
    config["tuning"] = {
        "trial": best.trial_id,
        "hyperparameters": values,
        "val_auc": float(best.score),
    }
    run.write_config(config)
    features, labels = loaded.val
    scores = model.predict(features, batch_size=4096, verbose=0)
    metrics = binary_metrics(labels, scores)
    metrics.update(
        {
            "data_kind": run_config["data"]["kind"],
            "preset": fields.name,
            "trial": best.trial_id,
            "steps": None,
        }
    )
    run.write_metrics(metrics)
    return metrics


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuneSettings:
    """Everything `tune` needs, checked on creation.

    Args:
        data: str. `"KIND:PATH"` (`criteo` or `avazu`).
        output: str or path. The output directory (see the module
            docstring).
        preset: `RankingPreset`. `get_preset("rm1", ...)`; its changed
            fields are not searched. Defaults to RM1.
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int > 0. Trials in all (a rerun continues up to it).
        epochs: int > 0. Most epochs per trial.
        fixed, ranges: dicts; see `keras_adrec.tuning.AdRecSearchSpace`.
        interaction: str. Interaction name; `"adrec"` is the one searched.
        val_data: str or None. `"KIND:PATH"` of validation rows; otherwise
            the last `val_fraction` of `data` (time order) validates.
        val_fraction, split_mode, on_bad_lines: as in `adrec train`.
        seed: int >= 0: weights, dropout, the split and the oracle.
        patience: int > 0. Epochs without improvement before a trial
            stops.
        overwrite: bool. Start over instead of resuming.
        export: bool. Save the best model and export it for serving.
        version: int > 0 or None. The serving version (see
            `keras_adrec.export.export_for_serving`).
        baseline: bool. Also train the preset's default hyperparameters
            the same way (once; kept in `DIR/baseline.json`) and quote
            their validation AUC in the summary.
        verbose: bool.
    """

    data: str
    output: object
    preset: RankingPreset = dataclasses.field(
        default_factory=lambda: get_preset("rm1")
    )
    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 1
    fixed: dict | None = None
    ranges: dict | None = None
    interaction: str = "adrec"
    val_data: str | None = None
    val_fraction: float = 0.2
    split_mode: str = "time"
    seed: int = 0
    patience: int = 2
    on_bad_lines: str = "error"
    overwrite: bool = False
    export: bool = True
    version: int | None = None
    baseline: bool = False
    verbose: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        checks.check_type("data", self.data, str, "a KIND:PATH string")
        if type(self.preset) is not RankingPreset:
            raise TypeError(
                "`preset` must be a RankingPreset (rm1-rm3). Received: "
                f"preset={getattr(self.preset, 'name', self.preset)!r}"
            )
        checks.check_choice("tuner", self.tuner, tuple(TUNERS))
        checks.check_int("max_trials", self.max_trials, 1)
        checks.check_int("epochs", self.epochs, 1)
        checks.check_fraction("val_fraction", self.val_fraction)
        checks.check_choice("split_mode", self.split_mode, ("time", "random"))
        checks.check_int("seed", self.seed, 0)
        checks.check_int("patience", self.patience, 1)
        checks.check_choice(
            "on_bad_lines", self.on_bad_lines, ("error", "skip")
        )
        checks.check_int("version", self.version, 1, optional=True)


def tune(settings):
    """The `adrec tune` job: search, summarise, save and export the best.

    Args:
        settings: a `TuneSettings`.

    Returns:
        dict with `trials` (completed / in all), `best` (the best record),
        `baseline`, `paths`, `metrics` (of the saved best model) and
        `role`.
    """
    fields = settings.preset
    data, output = settings.data, settings.output
    fixed, ranges = settings.fixed, settings.ranges
    interaction, epochs = settings.interaction, settings.epochs
    val_data, val_fraction = settings.val_data, settings.val_fraction
    split_mode, seed = settings.split_mode, settings.seed
    patience, on_bad_lines = settings.patience, settings.on_bad_lines
    overwrite, verbose = settings.overwrite, settings.verbose
    tuner = settings.tuner
    kind, paths = adrec_data.parse_data_spec(data, task="ranking")
    val_paths = (
        adrec_data.parse_data_spec(val_data, task="ranking")[1]
        if val_data
        else None
    )
    run_config = {
        "data": {"kind": kind, "paths": [str(p) for p in paths]},
        "val_data": [str(p) for p in val_paths] if val_paths else None,
        "val_fraction": None if val_paths else val_fraction,
        "split_mode": None if val_paths else split_mode,
        "seed": int(seed),
        "on_bad_lines": on_bad_lines,
    }
    # Check a rerun's settings before reading any data.
    search_config = {
        **run_config,
        "space": AdRecSearchSpace(fields, fixed, ranges).get_config(),
        "interaction": interaction,
        "patience": int(patience),
        "tuner": tuner,
        "epochs": int(epochs),
    }
    if is_worker():
        overwrite = False
    else:
        started = run_writes.prepare_in_place(
            output,
            "tune",
            OUTPUT_NAMES,
            overwrite=overwrite,
            inputs=[*paths, *(val_paths or [])],
            legacy=lambda folder: (folder / SEARCH_CONFIG_FILE).is_file(),
        )
    check_resume(output, search_config, overwrite=overwrite)

    keras.utils.set_random_seed(seed)
    loaded = adrec_data.load_ranking_data(
        data,
        val_data=val_data,
        val_fraction=val_fraction,
        split_mode=split_mode,
        seed=seed,
        on_bad_lines=on_bad_lines,
        min_frequency=fields.min_frequency,
        max_index_range=fields.max_index_range,
        in_memory=True,
    )
    hypermodel = RankingHyperModel(
        fields,
        vocabulary_sizes=loaded.vocabulary_sizes,
        num_dense=loaded.num_dense,
        interaction=interaction,
        fixed=fixed,
        ranges=ranges,
        seed=seed,
        patience=patience,
    )
    search_tuner = run_search(
        hypermodel,
        loaded.train,
        loaded.val,
        output,
        tuner=tuner,
        max_trials=settings.max_trials,
        epochs=epochs,
        seed=seed,
        overwrite=overwrite,
        verbose=1 if verbose else 0,
        search_config=search_config,
    )
    if is_worker():
        return {"role": "worker", "tuner_id": search_tuner.tuner_id}
    default_result = None
    if settings.baseline:
        default_result = _baseline(
            pathlib.Path(output) / BASELINE_FILE,
            hypermodel,
            loaded,
            epochs,
            search_config,
            verbose=1 if verbose else 0,
        )
    summary_paths = write_summary(
        search_tuner, output, hypermodel, baseline=default_result
    )
    rows = trial_rows(search_tuner)
    best = json.loads(pathlib.Path(summary_paths["best"]).read_text())
    result = {
        "role": "chief" if is_chief() else "single",
        "trials": {
            "completed": sum(r["status"] == "COMPLETED" for r in rows),
            "total": len(rows),
        },
        "best": best,
        "baseline": default_result,
        "paths": summary_paths,
        "metrics": None,
    }
    if settings.export and best is not None:
        model_dir = pathlib.Path(output) / BEST_MODEL_DIR
        result["metrics"] = save_best_model(
            search_tuner, hypermodel, loaded, model_dir, run_config
        )
        result["paths"]["best_model"] = str(model_dir)
        # A rerun with an explicit version replaces it; without one the
        # export takes the next version.
        result["paths"]["serving"] = str(
            export_for_serving(
                model_dir,
                pathlib.Path(output) / SERVING_DIR,
                version=settings.version,
                overwrite=settings.version is not None,
            )
        )
    run_folder.write_marker(
        output, "tune", "finished", files=OUTPUT_NAMES, started=started
    )
    return result
