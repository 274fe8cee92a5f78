"""KerasTuner searches of keras_adrec HyperModels: tuners, resumable
searches, their summaries.

`run_search` runs a resumable search of a HyperModel on in-memory data;
`write_summary` writes its trials table and best hyperparameters;
`train_defaults` trains the HyperModel's defaults the same way as a trial.
The whole `adrec tune` job (read the data, search, save and export the best
model) is `keras_adrec.jobs.tune.tune`.

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
gRPC server); the workers run trials. See `tuning/README.md`.
"""

import csv
import json
import os
import pathlib

import keras_tuner as kt
import numpy as np

from keras_adrec.tuning.validation_auc import OBJECTIVE

TUNERS = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
}
PROJECT_NAME = "search"
SEARCH_CONFIG_FILE = "search_config.json"
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
            best_record["fields"] = hypermodel.search_space.fields_for(
                values
            ).to_dict()
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
