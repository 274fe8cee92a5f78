"""`adrec evaluate`: score a trained model directory on data.

`evaluate(model_dir, data)` dispatches on the data kind the model was
trained on: ranking models score every row of `KIND:PATH`; sequential
(Taobao) models prepare the file with their saved settings and
vocabularies and score its validation points (targets after its time cut).
"""

from keras_adrec import data as adrec_data
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.run_checks import check_summary
from keras_adrec.training.run_checks import strict_metrics


def evaluate(model_dir, data, batch_size=1024, on_bad_lines="error"):
    """Metrics of the model in `model_dir` on `data` (`"KIND:PATH"`).

    Args:
        model_dir: a directory written by `adrec train`.
        data: `"KIND:PATH"`; the kind must be the one the model was
            trained on.
        batch_size: int, rows per prediction batch (ranking data).
        on_bad_lines: `"error"` or `"skip"`.

    Returns:
        dict with `auc`, `logloss`, `accuracy`, `examples` and
        `skipped_lines` (ranking data) or `points` (Taobao); strict JSON
        values: a non-finite metric is None and named in `warnings`, as
        are labels of one class (AUC undefined).

    Raises:
        FileNotFoundError: `model_dir` holds no trained model.
        ValueError: the data kind differs from the model's.
    """
    run = ModelDirectory(model_dir)
    run.check()
    kind, paths = adrec_data.parse_data_spec(data)
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
            run, kind, paths, batch_size=batch_size, on_bad_lines=on_bad_lines
        )
    return strict_metrics(check_summary(metrics))


def evaluate_ranking(run, kind, paths, batch_size=1024, on_bad_lines="error"):
    """Score every row of ranking files with a `ModelDirectory`'s model."""
    model, preprocessor, _ = run.load_ranking()
    raw = adrec_data.make_dataset(
        kind, paths, batch_size, on_bad_lines=on_bad_lines
    )
    dataset = adrec_data.preprocess(raw, preprocessor)
    with adrec_data.raise_data_format_errors():
        metrics = evaluate_model(model, dataset)
    stats = getattr(raw, "read_stats", None)
    metrics["skipped_lines"] = stats.skipped_lines if stats is not None else 0
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
