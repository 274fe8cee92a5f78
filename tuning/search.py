"""Resumable hyperparameter searches, their summary and the best model.

`run_search` runs a KerasTuner search of a HyperModel on in-memory data;
`tune` is the whole `adrec tune` job: read and preprocess the data once,
search, write the summary, save the best model in the `adrec train` layout
and export it for serving.

An output directory `DIR` of `tune` holds:

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
- `best_model/`: `model.keras`, `preprocessing/`, `config.json`,
  `metrics.json`, as `adrec train` writes them (so `adrec evaluate --model
  DIR/best_model` works);
- `serving/<version>/`: the SavedModel of
  `keras_adrec.export.export_for_serving`.

Resuming: KerasTuner reloads the project when `overwrite=False` and the
directory and project name are the same. Finished trials are kept and not
run again; a trial that was running when the job stopped is run again from
its start with the same hyperparameters; `max_trials` may grow between
runs (rerun with `max_trials=3` after `max_trials=2` runs one new trial).

Distributed search (KerasTuner's chief/worker mode): start the same job in
several processes that share the output directory, with
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` set to the chief's
address in all of them and `KERASTUNER_TUNER_ID=chief` in one, a unique
`tuner0`, `tuner1`, ... in the others. The chief only runs the oracle (a
gRPC server); the workers run trials. When the trials are done the chief
writes the summary and exports the best model; the workers just return.
See `tuning/README.md`.
"""

import csv
import json
import os
import pathlib
import shutil

import keras
import keras_tuner as kt
import numpy as np

from tuning.validation_auc import OBJECTIVE

TUNERS = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
}
PROJECT_NAME = "search"
SEARCH_CONFIG_FILE = "search_config.json"
BEST_MODEL_DIR = "best_model"
SERVING_DIR = "serving"
BASELINE_FILE = "baseline.json"
SUMMARY_FILES = {
    "markdown": "trials.md",
    "csv": "trials.csv",
    "json": "trials.json",
    "best": "best_hyperparameters.json",
}


def objective():
    """The objective of every search: exact validation AUC, maximised."""
    return kt.Objective(OBJECTIVE, direction="max")


def is_worker():
    """True in a distributed search's worker process (not the chief)."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in (
        os.environ.get("KERASTUNER_TUNER_ID", "")
    )


def is_chief():
    """True in a distributed search's chief process."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" in (
        os.environ.get("KERASTUNER_TUNER_ID", "")
    )


def make_tuner(
    kind,
    hypermodel,
    directory,
    max_trials=10,
    epochs=1,
    seed=0,
    overwrite=False,
    project_name=PROJECT_NAME,
    max_consecutive_failed_trials=3,
):
    """A KerasTuner tuner of kind `random`, `bayesian` or `hyperband`.

    Every kind maximises the exact validation AUC and stops after
    `max_trials` trials. Hyperband trains each trial for at most `epochs`
    epochs and repeats its brackets until `max_trials` is reached.

    Args:
        kind: `"random"`, `"bayesian"` or `"hyperband"`.
        hypermodel: a `keras_tuner.HyperModel`.
        directory: the directory holding the project.
        max_trials: int, trials in all (across resumed runs).
        epochs: int, Hyperband's `max_epochs` (the others take epochs in
            `search`).
        seed: int, the oracle's seed.
        overwrite: bool. Delete an existing project instead of resuming it.
        project_name: the project's folder name under `directory`.
        max_consecutive_failed_trials: int, KerasTuner's limit.

    Returns:
        The tuner.
    """
    if kind not in TUNERS:
        raise ValueError(
            f"Unknown tuner {kind!r}. Choose one of {', '.join(TUNERS)}."
        )
    if int(max_trials) < 1:
        raise ValueError(
            f"`max_trials` must be positive. Received: max_trials={max_trials}"
        )
    common = {
        "hypermodel": hypermodel,
        "objective": objective(),
        # KerasTuner draws a random seed when given 0 (falsy): shift by one.
        "seed": int(seed) + 1,
        "directory": str(directory),
        "project_name": project_name,
        "overwrite": bool(overwrite),
        "max_consecutive_failed_trials": int(max_consecutive_failed_trials),
    }
    if kind == "hyperband":
        tuner = kt.Hyperband(
            max_epochs=max(1, int(epochs)),
            factor=3,
            # No limit on iterations: `max_trials` stops the search.
            hyperband_iterations=None,
            **common,
        )
    else:
        tuner = TUNERS[kind](max_trials=int(max_trials), **common)
    tuner.oracle.max_trials = int(max_trials)
    return tuner


def check_resume(directory, config, overwrite=False):
    """Refuse to resume a search that was started with another config.

    Writes `config` to `directory/search_config.json` when there is none
    (or when `overwrite`). A worker of a distributed search only reads it.

    Raises:
        ValueError: naming the differing keys.
    """
    directory = pathlib.Path(directory)
    path = directory / SEARCH_CONFIG_FILE
    config = json.loads(json.dumps(config))
    if path.is_file() and not overwrite:
        previous = json.loads(path.read_text())
        differing = sorted(
            key
            for key in set(previous) | set(config)
            if previous.get(key) != config.get(key)
        )
        if differing:
            raise ValueError(
                f"{directory} holds a search started with different "
                f"settings ({', '.join(differing)}); resume it with the "
                "same ones, choose another output directory, or overwrite "
                "it. Previous: "
                + json.dumps({k: previous.get(k) for k in differing})
            )
        return
    if not is_worker():
        directory.mkdir(parents=True, exist_ok=True)
        # Written whole or not at all: workers may read it meanwhile.
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(config, indent=2))
        os.replace(partial, path)


def run_search(
    hypermodel,
    train,
    validation,
    directory,
    tuner="random",
    max_trials=10,
    epochs=1,
    seed=0,
    overwrite=False,
    verbose=False,
    callbacks=None,
    search_config=None,
):
    """Search `hypermodel` on in-memory data; resumable.

    Args:
        hypermodel: `tuning.RankingHyperModel` (or any HyperModel whose
            `fit` takes `validation_data` and reports `val_auc`).
        train: `(features, labels)`: features a dict of arrays.
        validation: `(features, labels)` of the validation rows.
        directory: output directory; the KerasTuner project is
            `directory/search`.
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int, trials in all, counting those of earlier runs.
        epochs: int, most epochs of a trial (early stopping may end it).
        seed: int, the oracle's seed.
        overwrite: bool. Start over instead of resuming.
        verbose: bool or int, KerasTuner and Keras verbosity.
        callbacks: extra Keras callbacks of every trial (deep-copied).
        search_config: dict describing the search, checked on resume
            (`check_resume`); defaults to the hypermodel's config, tuner,
            epochs and seed.

    Returns:
        The tuner, its search done (or, in a worker, its share done).
    """
    directory = pathlib.Path(directory)
    if is_worker():
        overwrite = False
    if search_config is None:
        search_config = {
            "hypermodel": _config_of(hypermodel),
            "tuner": tuner,
            "epochs": int(epochs),
            "seed": int(seed),
        }
    check_resume(directory, search_config, overwrite=overwrite)
    search_tuner = make_tuner(
        tuner,
        hypermodel,
        directory,
        max_trials=max_trials,
        epochs=epochs,
        seed=seed,
        overwrite=overwrite,
    )
    x, y = train
    search_tuner.search(
        x,
        y,
        validation_data=validation,
        epochs=int(epochs),
        callbacks=list(callbacks or []),
        verbose=int(verbose),
    )
    return search_tuner


def _config_of(hypermodel):
    get_config = getattr(hypermodel, "get_config", None)
    config = get_config() if get_config else {"class": type(hypermodel)}
    config = dict(config)
    config.pop("vocabulary_sizes", None)
    config["class"] = type(hypermodel).__name__
    return json.loads(json.dumps(config, default=str))


# Summary ------------------------------------------------------------------


def trial_rows(tuner):
    """One dict per trial: id, status, metrics at its best epoch, values."""
    trials = tuner.oracle.trials
    rows = []
    for trial_id in sorted(trials):
        trial = trials[trial_id]
        metrics = trial.metrics
        row = {
            "trial": trial_id,
            "status": trial.status,
            "val_auc": _value(trial.score),
            "val_logloss": _last(metrics, "val_logloss"),
            "best_epoch": (
                None if trial.best_step is None else int(trial.best_step) + 1
            ),
        }
        row.update(
            {
                name: value
                for name, value in trial.hyperparameters.values.items()
            }
        )
        rows.append(row)
    return rows


def _value(value):
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _last(metrics, name):
    if not metrics.exists(name):
        return None
    return _value(metrics.get_last_value(name))


def best_trial(tuner):
    """The completed trial of highest validation AUC, or None."""
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        return None
    return best[0]


def write_summary(tuner, output, hypermodel=None, baseline=None):
    """Write the trials table (md, csv, json) and the best hyperparameters.

    Args:
        tuner: a tuner after `search`.
        output: directory to write into.
        hypermodel: the searched HyperModel; with it the best trial's preset
            fields are added to `best_hyperparameters.json`.
        baseline: optional `train_defaults` result, quoted in the markdown
            and in `best_hyperparameters.json`.

    Returns:
        dict of the written paths (keys of `SUMMARY_FILES`).
    """
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(tuner)
    columns = _columns(rows)
    paths = {key: output / name for key, name in SUMMARY_FILES.items()}
    best = best_trial(tuner)
    best_id = best.trial_id if best is not None else None

    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    paths["json"].write_text(json.dumps(rows, indent=2))

    completed = [r for r in rows if r["status"] == "COMPLETED"]
    lines = [
        f"# Hyperparameter search ({len(rows)} trials, "
        f"{len(completed)} completed)",
        "",
        f"Objective: exact validation AUC, maximised. Best trial: {best_id}"
        + (f" (val AUC {best.score:.4f})." if best is not None else "."),
        "",
    ]
    if baseline is not None:
        lines += [
            "The preset's default hyperparameters, trained the same way: "
            f"val AUC {baseline['val_auc']:.4f}, val logloss "
            f"{baseline['val_logloss']:.4f}.",
            "",
        ]
    lines += [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_md_cell(row.get(k)) for k in columns]
        if row["trial"] == best_id:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    paths["markdown"].write_text("\n".join(lines) + "\n")

    best_record = None
    if best is not None:
        values = dict(best.hyperparameters.values)
        best_record = {
            "trial": best.trial_id,
            "val_auc": float(best.score),
            "val_logloss": _last(best.metrics, "val_logloss"),
            "best_epoch": (
                None if best.best_step is None else int(best.best_step) + 1
            ),
            "hyperparameters": values,
        }
        if hypermodel is not None and hasattr(hypermodel, "search_space"):
            best_record["fields"] = hypermodel.search_space.fields_for(values)
        if baseline is not None:
            best_record["baseline"] = baseline
    paths["best"].write_text(json.dumps(best_record, indent=2))
    return {key: str(path) for key, path in paths.items()}


def _columns(rows):
    columns = ["trial", "status", "val_auc", "val_logloss", "best_epoch"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def _csv_cell(value):
    return "" if value is None else value


def _md_cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 else f"{value:.4f}"
    return str(value).replace("|", "\\|")


def train_defaults(hypermodel, train, validation, epochs=1, verbose=0):
    """Train the HyperModel's defaults (the preset) as a trial would be.

    Same data, seed, epochs, early stopping and exact validation AUC as
    every trial, so the search's best can be compared with the preset.

    Returns:
        dict with `val_auc`, `val_logloss`, `best_epoch` (at the best
        validation AUC) and the default `hyperparameters`.
    """
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    x, y = train
    history = hypermodel.fit(
        hp,
        model,
        x,
        y,
        validation_data=validation,
        epochs=int(epochs),
        verbose=verbose,
    ).history
    aucs = np.asarray(history["val_auc"], dtype="float64")
    best = int(np.nanargmax(aucs)) if np.isfinite(aucs).any() else 0
    return {
        "val_auc": _value(aucs[best]),
        "val_logloss": _value(history["val_logloss"][best]),
        "best_epoch": best + 1,
        "hyperparameters": dict(hp.values),
    }


def _baseline(path, hypermodel, loaded, epochs, search_config, verbose):
    """`train_defaults`, cached in `path` for this search's settings."""
    path = pathlib.Path(path)
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("search_config") == json.loads(json.dumps(search_config)):
            return cached["result"]
    result = train_defaults(
        hypermodel, loaded["train"], loaded["val"], epochs, verbose
    )
    path.write_text(
        json.dumps({"search_config": search_config, "result": result})
    )
    return result


# The whole job --------------------------------------------------------------


def _to_arrays(dataset):
    dense, sparse, labels = [], [], []
    for features, label in dataset:
        dense.append(np.asarray(features["dense"]))
        sparse.append(np.asarray(features["sparse"]))
        labels.append(np.asarray(label))
    if not labels:
        raise ValueError("The data yielded no rows.")
    return (
        {"dense": np.concatenate(dense), "sparse": np.concatenate(sparse)},
        np.concatenate(labels).reshape(-1, 1).astype("float32"),
    )


def load_data(
    data,
    fields,
    val_data=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    on_bad_lines="error",
):
    """Read, split and preprocess `KIND:PATH` once, into numpy arrays.

    Returns:
        dict with `train` and `val` (`(features, labels)`), `preprocessor`,
        `kind`, `paths`, `val_paths` and `num_dense`.
    """
    from keras_adrec import data as adrec_data
    from keras_adrec.training.ranking_job import build_datasets
    from keras_adrec.training.ranking_job import parse_data_spec

    kind, paths = parse_data_spec(data)
    val_paths = None
    if val_data:
        val_kind, val_paths = parse_data_spec(val_data)
        if val_kind != kind:
            raise ValueError(
                f"--val-data kind {val_kind!r} differs from --data kind "
                f"{kind!r}."
            )
    with adrec_data.raise_data_format_errors():
        train_ds, val_ds, preprocessor, _ = build_datasets(
            kind,
            paths,
            4096,
            val_paths=val_paths,
            val_fraction=val_fraction,
            split_mode=split_mode,
            seed=seed,
            on_bad_lines=on_bad_lines,
            min_frequency=fields["min_frequency"],
            max_index_range=fields["max_index_range"],
        )
        train = _to_arrays(train_ds)
        val = _to_arrays(val_ds)
    return {
        "train": train,
        "val": val,
        "preprocessor": preprocessor,
        "kind": kind,
        "paths": [str(p) for p in paths],
        "val_paths": [str(p) for p in val_paths] if val_paths else None,
        "num_dense": adrec_data.SCHEMAS[kind].num_dense,
    }


def save_best_model(tuner, hypermodel, loaded, output, run_config):
    """Write the best trial's model in the `adrec train` layout.

    Args:
        tuner: the tuner after its search.
        hypermodel: the searched `RankingHyperModel`.
        loaded: `load_data`'s dict (preprocessor and validation rows).
        output: the model directory to write.
        run_config: the data part of `config.json` (`data`, `val_data`,
            `val_fraction`, `split_mode`, `seed`, `on_bad_lines`).

    Returns:
        The validation metrics of the saved model (`metrics.json`).
    """
    from keras_adrec.training.metrics import binary_metrics
    from keras_adrec.training.ranking_job import CONFIG_FILE
    from keras_adrec.training.ranking_job import METRICS_FILE
    from keras_adrec.training.ranking_job import MODEL_FILE
    from keras_adrec.training.ranking_job import PREPROCESSING_DIR

    best = best_trial(tuner)
    if best is None:
        raise RuntimeError(
            "No trial completed, so there is no best model to save; see "
            "the trial messages in trials.json."
        )
    output = pathlib.Path(output)
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    model = tuner.load_model(best)
    model.save(output / MODEL_FILE)
    loaded["preprocessor"].save_artifacts(output / PREPROCESSING_DIR)
    values = dict(best.hyperparameters.values)
    fields = hypermodel.search_space.fields_for(values)
    fields["interaction"] = hypermodel.interaction
    config = dict(run_config)
    config["preset"] = fields
    config["tuning"] = {
        "trial": best.trial_id,
        "hyperparameters": values,
        "val_auc": float(best.score),
    }
    (output / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    features, labels = loaded["val"]
    scores = model.predict(features, batch_size=4096, verbose=0)
    metrics = binary_metrics(labels, scores)
    metrics.update(
        {
            "data_kind": loaded["kind"],
            "preset": fields.get("name"),
            "trial": best.trial_id,
            "steps": None,
        }
    )
    (output / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def export_best(model_dir, output, version=None):
    """Export `model_dir` with `keras_adrec.export.export_for_serving`.

    Returns:
        What `export_for_serving` returns (the export path), or None with a
        printed note when the export module is not available.
    """
    try:
        from keras_adrec.export import export_for_serving
    except ImportError:
        print(
            "Note: keras_adrec.export.export_for_serving is not available; "
            "the best model was saved as .keras only."
        )
        return None
    # A rerun with an explicit version replaces it; without one the export
    # takes the next version.
    result = export_for_serving(
        str(model_dir),
        str(pathlib.Path(output) / SERVING_DIR),
        version=version,
        overwrite=version is not None,
    )
    return None if result is None else str(result)


def tune(
    data,
    output,
    preset="rm1",
    tuner="random",
    max_trials=10,
    epochs=1,
    fixed=None,
    ranges=None,
    overrides=None,
    interaction="adrec",
    val_data=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    patience=2,
    on_bad_lines="error",
    overwrite=False,
    export=True,
    version=None,
    baseline=False,
    verbose=True,
):
    """The `adrec tune` job: search, summarise, save and export the best.

    Args:
        data: `"KIND:PATH"` (`criteo` or `avazu`).
        output: output directory (see the module docstring).
        preset: `"rm1"`, `"rm2"` or `"rm3"`.
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int, trials in all (a rerun continues up to it).
        epochs: int, most epochs per trial.
        fixed, ranges: see `tuning.AdRecSearchSpace`.
        overrides: dict of preset fields to replace (not searched).
        interaction: interaction name; `"adrec"` is the one searched.
        val_data: optional `"KIND:PATH"` of validation rows; otherwise the
            last `val_fraction` of `data` (time order) validates.
        val_fraction, split_mode, on_bad_lines: as in `adrec train`.
        seed: int: weights, dropout, the split and the oracle.
        patience: int, epochs without improvement before a trial stops.
        overwrite: bool. Start over instead of resuming.
        export: bool. Save the best model and export it for serving.
        version: int or None, the serving version (see
            `keras_adrec.export.export_for_serving`).
        baseline: bool. Also train the preset's default hyperparameters
            the same way (once; kept in `DIR/baseline.json`) and quote
            their validation AUC in the summary.
        verbose: bool.

    Returns:
        dict with `trials` (completed / in all), `best` (the best record),
        `baseline`, `paths`, `metrics` (of the saved best model) and
        `role`.
    """
    from keras_adrec.models.presets import get_preset
    from keras_adrec.training.ranking_job import parse_data_spec
    from tuning.ranking_hypermodel import RankingHyperModel
    from tuning.search_space import AdRecSearchSpace

    fields = get_preset(preset, **(overrides or {}))
    kind, paths = parse_data_spec(data)
    val_paths = parse_data_spec(val_data)[1] if val_data else None
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
    check_resume(output, search_config, overwrite=overwrite)

    keras.utils.set_random_seed(seed)
    loaded = load_data(
        data,
        fields,
        val_data=val_data,
        val_fraction=val_fraction,
        split_mode=split_mode,
        seed=seed,
        on_bad_lines=on_bad_lines,
    )
    hypermodel = RankingHyperModel(
        preset,
        vocabulary_sizes=loaded["preprocessor"].vocabulary_sizes,
        num_dense=loaded["num_dense"],
        interaction=interaction,
        overrides=overrides,
        fixed=fixed,
        ranges=ranges,
        seed=seed,
        patience=patience,
    )
    search_tuner = run_search(
        hypermodel,
        loaded["train"],
        loaded["val"],
        output,
        tuner=tuner,
        max_trials=max_trials,
        epochs=epochs,
        seed=seed,
        overwrite=overwrite,
        verbose=1 if verbose else 0,
        search_config=search_config,
    )
    if is_worker():
        return {"role": "worker", "tuner_id": search_tuner.tuner_id}
    default_result = None
    if baseline:
        default_result = _baseline(
            pathlib.Path(output) / BASELINE_FILE,
            hypermodel,
            loaded,
            epochs,
            search_config,
            verbose=1 if verbose else 0,
        )
    paths = write_summary(
        search_tuner, output, hypermodel, baseline=default_result
    )
    rows = trial_rows(search_tuner)
    best = json.loads(pathlib.Path(paths["best"]).read_text())
    result = {
        "role": "chief" if is_chief() else "single",
        "trials": {
            "completed": sum(r["status"] == "COMPLETED" for r in rows),
            "total": len(rows),
        },
        "best": best,
        "baseline": default_result,
        "paths": paths,
        "metrics": None,
    }
    if export and best is not None:
        model_dir = pathlib.Path(output) / BEST_MODEL_DIR
        result["metrics"] = save_best_model(
            search_tuner, hypermodel, loaded, model_dir, run_config
        )
        result["paths"]["best_model"] = str(model_dir)
        result["paths"]["serving"] = export_best(
            model_dir, output, version=version
        )
    return result
