"""`adrec evaluate`: score a trained model directory on data.

`evaluate(EvaluateSettings(model_dir=..., data=...))` dispatches on the
data kind the model was
trained on: ranking models score every row of `KIND:PATH`; sequential
(Taobao) models prepare the file with their saved settings and
vocabularies and score its validation points (targets after its time cut).
"""

import dataclasses

from keras_adrec import data as adrec_data
from keras_adrec.jobs import settings as checks
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.run_checks import check_summary
from keras_adrec.training.run_checks import strict_metrics


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateSettings:
    """Everything `evaluate` needs, checked on creation.

    Args:
        model_dir: str or path. A directory written by `adrec train`.
        data: str. `"KIND:PATH"`; the kind must be the one the model was
            trained on.
        batch_size: int > 0. Rows per prediction batch (ranking data).
            Defaults to `1024`.
        on_bad_lines: `"error"` or `"skip"`.
    """

    model_dir: object
    data: str
    batch_size: int = 1024
    on_bad_lines: str = "error"

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        checks.check_type("data", self.data, str, "a KIND:PATH string")
        checks.check_int("batch_size", self.batch_size, 1)
        checks.check_choice(
            "on_bad_lines", self.on_bad_lines, ("error", "skip")
        )


def evaluate(settings):
    """Metrics of a trained model directory on data.

    Args:
        settings: an `EvaluateSettings`.

    Returns:
        dict with `auc`, `logloss`, `accuracy`, `calibration`, `gauc` (a
        table whose schema names a group column), `examples` and
        `skipped_lines` (ranking data) or `points` (Taobao); strict JSON
        values: a non-finite metric is None and named in `warnings`, as
        are labels of one class (AUC undefined).

    Raises:
        FileNotFoundError: `model_dir` holds no trained model.
        ValueError: the data kind differs from the model's.
    """
    model_dir = settings.model_dir
    on_bad_lines = settings.on_bad_lines
    run = ModelDirectory(model_dir)
    run.check()
    kind, paths = adrec_data.parse_data_spec(settings.data)
    trained_kind = run.data_kind()
    if kind != trained_kind:
        raise ValueError(
            f"The model in {model_dir} was trained on {trained_kind} data; "
            f"it cannot evaluate {kind} data."
        )
    if adrec_data.data_kind(kind).task == "sequential":
        metrics = evaluate_sequential(run, paths[0], on_bad_lines=on_bad_lines)
    else:
        metrics = evaluate_ranking(
            run,
            kind,
            paths,
            batch_size=settings.batch_size,
            on_bad_lines=on_bad_lines,
        )
    return strict_metrics(check_summary(metrics))


def evaluate_ranking(run, kind, paths, batch_size=1024, on_bad_lines="error"):
    """Score every row of ranking files with a `ModelDirectory`'s model."""
    model, preprocessor, config = run.load_ranking()
    if config.get("schema") is not None:
        return _evaluate_table(run, model, preprocessor, config, paths, kind)
    raw = adrec_data.make_dataset(
        kind, paths, batch_size, on_bad_lines=on_bad_lines
    )
    dataset = adrec_data.preprocess(raw, preprocessor)
    with adrec_data.raise_data_format_errors():
        metrics = evaluate_model(model, dataset)
    stats = getattr(raw, "read_stats", None)
    metrics["skipped_lines"] = stats.skipped_lines if stats is not None else 0
    return metrics


def _evaluate_table(run, model, preprocessor, config, paths, kind):
    """Score every row of a table read with the run's schema file; GAUC
    when the schema names a group column."""
    schema = adrec_data.TableSchema.from_dict(config["schema"])
    lookup = adrec_data.MultiHotLookup.load_artifacts(run.preprocessing_path)
    raw = adrec_data.table_dataset(paths, 4096, schema, file_format=kind)
    dataset = adrec_data.preprocess_table(
        raw, preprocessor, lookup, with_group=schema.group is not None
    )
    with adrec_data.raise_data_format_errors():
        metrics = evaluate_model(model, dataset)
    metrics["skipped_lines"] = 0
    return metrics


def evaluate_sequential(run, path, on_bad_lines="error"):
    """Score the validation points of a Taobao events file."""
    model, vocabulary, config = run.load_sequential()
    split = adrec_data.prepare_taobao(
        str(path),
        vocabulary=vocabulary,
        seed=config["seed"],
        on_bad_lines=on_bad_lines,
        **config["preparation"],
    )
    metrics = evaluate_model(model, split.validation.to_dataset(4096))
    metrics["points"] = len(split.validation)
    return metrics
