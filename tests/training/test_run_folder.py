"""Run folders: the marker, the overwrite rules, staged replacement and
write failures (`keras_adrec.training.run_folder`), and the checks that
keep a wrong run from looking finished (`keras_adrec.training.run_checks`).

No model is trained here: folders are made by hand, faults are injected by
monkeypatching (the suite runs as root, whom a read-only mode does not
stop).
"""

import errno
import gzip
import json
import math
import os
import pathlib

import pytest

from keras_adrec.training import run_checks
from keras_adrec.training import run_folder
from keras_adrec.training import run_writes
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.model_directory import ModelDirectoryError
from keras_adrec.training.run_folder import MARKER_FILE
from keras_adrec.training.run_folder import OutputWriteError
from keras_adrec.training.run_folder import RunExistsError
from keras_adrec.training.run_folder import UnsafeOutputError
from keras_adrec.training.run_folder import check_output
from keras_adrec.training.run_writes import staged_output

RUN_FILES = ("config.json", "metrics.json", "model.keras")


def _run(folder, kind="train", files=RUN_FILES):
    """A finished run of `kind` holding `files` (and the marker)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(f"old {name}")
    run_folder.write_marker(folder, kind, "finished")
    return folder


def _snapshot(folder):
    return {
        p.relative_to(folder): p.read_bytes()
        for p in sorted(pathlib.Path(folder).rglob("*"))
        if p.is_file()
    }


# The marker.


def test_marker_round_trip(tmp_path):
    folder = _run(tmp_path / "run")
    marker = run_folder.read_marker(folder)
    assert marker["format"] == "keras_adrec run"
    assert marker["kind"] == "train"
    assert marker["state"] == "finished"
    assert marker["finished"] is not None
    assert marker["files"] == sorted(RUN_FILES)
    assert isinstance(marker["keras_adrec_version"], str)


def test_a_folder_without_marker_has_none(tmp_path):
    assert run_folder.read_marker(tmp_path) is None


@pytest.mark.parametrize(
    "text", ["not json", json.dumps({"kind": "train"}), json.dumps([1])]
)
def test_a_foreign_or_broken_marker_is_refused(tmp_path, text):
    (tmp_path / MARKER_FILE).write_text(text)
    with pytest.raises(UnsafeOutputError, match="marker"):
        run_folder.read_marker(tmp_path)


# check_output: what may be written and replaced.


def test_a_new_or_empty_output_is_accepted(tmp_path):
    check_output(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")


def test_a_finished_run_needs_overwrite(tmp_path):
    folder = _run(tmp_path / "run")
    with pytest.raises(RunExistsError, match="--overwrite") as info:
        check_output(folder)
    assert not isinstance(info.value, UnsafeOutputError)
    check_output(folder, overwrite=True)


def test_overwrite_refuses_a_run_holding_foreign_files(tmp_path):
    folder = _run(tmp_path / "run")
    (folder / "notes.txt").write_text("mine")
    (folder / "data").mkdir()
    with pytest.raises(UnsafeOutputError) as info:
        check_output(folder, overwrite=True)
    message = str(info.value)
    assert message.startswith(f"--output {folder} holds files adrec did")
    assert "(data, notes.txt)" in message and "refusing" in message


def test_overwrite_refuses_a_folder_without_marker(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.keras").write_text("an older adrec's run")
    with pytest.raises(UnsafeOutputError, match="no adrec run marker"):
        check_output(folder, overwrite=True)


def test_overwrite_refuses_a_run_of_another_kind(tmp_path):
    folder = _run(tmp_path / "cmp", kind="compare", files=("results.md",))
    with pytest.raises(UnsafeOutputError, match="adrec compare run, not a"):
        check_output(folder, overwrite=True, kind="train")


def test_a_regular_file_is_never_an_output(tmp_path):
    path = tmp_path / "afile.txt"
    path.write_text("keep")
    with pytest.raises(UnsafeOutputError, match="is a file, not a folder"):
        check_output(path, overwrite=True)
    with pytest.raises(UnsafeOutputError, match="is a file, not a folder"):
        check_output(path / "run")
    assert path.read_text() == "keep"


def test_a_symbolic_link_is_never_an_output(tmp_path):
    folder = _run(tmp_path / "run")
    link = tmp_path / "link"
    link.symlink_to(folder)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        check_output(link, overwrite=True)


@pytest.mark.parametrize("output", [".", "..", "sub/.."])
def test_the_current_folder_is_never_an_output(tmp_path, monkeypatch, output):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub" if output == ".." else tmp_path)
    with pytest.raises(UnsafeOutputError, match="current folder"):
        check_output(output, overwrite=True)


def test_the_output_is_apart_from_every_input(tmp_path):
    data = tmp_path / "userdir" / "c2k.txt"
    data.parent.mkdir()
    data.write_text("rows")
    cases = {
        tmp_path / "userdir": "contains the input",
        data: "is the input",
        tmp_path / "userdir" / "c2k.txt" / "run": "lies inside the input",
        tmp_path: "contains the input",
    }
    for output, words in cases.items():
        with pytest.raises(UnsafeOutputError, match=words):
            check_output(output, overwrite=True, inputs=[data])
    # A folder input (a model, a checkpoint folder) may not hold it either.
    with pytest.raises(UnsafeOutputError, match="lies inside the input"):
        check_output(
            tmp_path / "userdir" / "run", inputs=[tmp_path / "userdir"]
        )
    check_output(tmp_path / "run", inputs=[data, None])


def test_inputs_are_compared_by_resolved_path(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "day.txt").write_text("rows")
    link = tmp_path / "elsewhere.txt"
    link.symlink_to(out / "day.txt")
    with pytest.raises(UnsafeOutputError, match="contains the input"):
        check_output(out, inputs=[link])


# staged_output: the order of a replacement, failures.


def test_the_old_run_is_removed_only_after_the_new_one_is_complete(tmp_path):
    folder = _run(tmp_path / "run")
    old = _snapshot(folder)
    with staged_output(folder, overwrite=True) as staging:
        assert staging != folder
        (staging / "model.keras").write_text("new")
        assert _snapshot(folder) == old
        marker = json.loads((staging / MARKER_FILE).read_text())
        assert marker["state"] == "running"
    assert (folder / "model.keras").read_text() == "new"
    assert not (folder / "config.json").exists()
    marker = run_folder.read_marker(folder)
    assert marker["state"] == "finished"
    assert marker["files"] == ["model.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_failed_run_leaves_the_old_one_untouched(tmp_path):
    folder = _run(tmp_path / "run")
    old = _snapshot(folder)
    with pytest.raises(RuntimeError):
        with staged_output(folder, overwrite=True) as staging:
            (staging / "model.keras").write_text("half")
            raise RuntimeError("killed")
    assert _snapshot(folder) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_staging_refuses_what_check_output_refuses(tmp_path):
    folder = _run(tmp_path / "run")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError, match="notes.txt"):
        with staged_output(folder, overwrite=True):
            pytest.fail("the block must not run")
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "No space left on device (ENOSPC)"),
        (errno.EROFS, "Read-only file system (EROFS)"),
    ],
)
def test_a_failed_write_names_the_flag_and_the_path(tmp_path, code, words):
    folder = _run(tmp_path / "run")
    old = _snapshot(folder)
    with pytest.raises(OutputWriteError) as info:
        with staged_output(folder, overwrite=True) as staging:
            raise OSError(code, os.strerror(code))
    message = str(info.value)
    assert message.startswith(f"cannot write --output {folder}: ")
    assert words in message and "\n" not in message
    assert isinstance(info.value, ModelDirectoryError)
    assert _snapshot(folder) == old
    assert not staging.exists()


def test_a_folder_that_cannot_be_made_is_a_write_error(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(OutputWriteError, match="--output .*Permission denied"):
        with staged_output(tmp_path / "run"):
            pytest.fail("the block must not run")


def test_a_data_read_error_is_not_reported_as_a_write_error(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError):
        with staged_output(tmp_path / "run"):
            missing.read_text()
    assert not (tmp_path / "run").exists()


def test_an_old_run_that_cannot_be_removed_is_named(tmp_path, monkeypatch):
    folder = _run(tmp_path / "run")

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with pytest.raises(OutputWriteError, match="holds the new run") as info:
        with staged_output(folder, overwrite=True) as staging:
            (staging / "model.keras").write_text("new")
            monkeypatch.setattr(run_writes.shutil, "rmtree", refuse)
    assert ".run.old-" in str(info.value)
    assert (folder / "model.keras").read_text() == "new"


def test_stale_staging_is_removed_but_a_look_alike_is_kept(tmp_path):
    stale = tmp_path / ".run.partial-999999"
    stale.mkdir()
    run_folder.write_marker(stale, "train", files=())
    look_alike = tmp_path / ".run.partial-123456"
    look_alike.mkdir()
    (look_alike / "mine.txt").write_text("keep")
    with staged_output(tmp_path / "run") as staging:
        (staging / "model.keras").write_text("new")
    assert not stale.exists()
    assert (look_alike / "mine.txt").read_text() == "keep"


def test_an_empty_folder_is_filled(tmp_path):
    (tmp_path / "run").mkdir()
    with staged_output(tmp_path / "run") as staging:
        (staging / "model.keras").write_text("new")
    assert (tmp_path / "run" / "model.keras").read_text() == "new"


# prepare_in_place: a resumable run (adrec tune).

TUNE_NAMES = ("search", "search_config.json", "trials.md", "best_model")


def test_prepare_in_place_marks_a_new_folder(tmp_path):
    folder = tmp_path / "tune"
    run_writes.prepare_in_place(folder, "tune", TUNE_NAMES)
    marker = run_folder.read_marker(folder)
    assert marker["kind"] == "tune" and marker["state"] == "running"
    (folder / "trials.md").write_text("table")
    # Its own transient files are not foreign.
    (folder / ".best_model.partial-42").mkdir()
    (folder / ".best_model.lock").write_text("pid 42")
    run_writes.prepare_in_place(folder, "tune", TUNE_NAMES)
    run_writes.prepare_in_place(folder, "tune", TUNE_NAMES, overwrite=True)


def test_prepare_in_place_refuses_a_users_folder(tmp_path):
    folder = tmp_path / "userdir"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(UnsafeOutputError, match="no adrec run marker"):
            run_writes.prepare_in_place(
                folder, "tune", TUNE_NAMES, overwrite=overwrite
            )
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_prepare_in_place_refuses_foreign_files_in_its_run(tmp_path):
    folder = tmp_path / "tune"
    run_writes.prepare_in_place(folder, "tune", TUNE_NAMES)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError, match=r"\(notes.txt\)"):
        run_writes.prepare_in_place(folder, "tune", TUNE_NAMES, overwrite=True)


def test_prepare_in_place_adopts_a_legacy_run(tmp_path):
    folder = tmp_path / "tune"
    folder.mkdir()
    (folder / "search_config.json").write_text("{}")
    run_writes.prepare_in_place(
        folder,
        "tune",
        TUNE_NAMES,
        legacy=lambda f: (f / "search_config.json").is_file(),
    )
    assert run_folder.read_marker(folder)["kind"] == "tune"


# run_checks: strict metrics, zero steps, one class, overlap.


def _strict_loads(text):
    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_metrics_json_is_strict(tmp_path):
    run = ModelDirectory(tmp_path / "run")
    run.write_metrics(
        {
            "auc": float("nan"),
            "logloss": 0.5,
            "curve": [1.0, float("inf")],
            "skipped": {"val": float("-inf")},
        }
    )
    metrics = _strict_loads(run.metrics_path.read_text())
    assert metrics["auc"] is None and metrics["logloss"] == 0.5
    assert metrics["curve"] == [1.0, None]
    assert metrics["skipped"] == {"val": None}
    assert metrics["warnings"] == [
        "auc is nan (not finite): written as null",
        "curve[1] is inf (not finite): written as null",
        "skipped.val is -inf (not finite): written as null",
    ]


def test_zero_training_steps_is_an_error():
    with pytest.raises(run_checks.RunCheckError, match="0 steps"):
        run_checks.check_summary({"steps": 0, "auc": 0.5, "logloss": 0.7})
    assert isinstance(run_checks.RunCheckError("x"), ModelDirectoryError)


def test_validation_labels_of_one_class_are_a_warning():
    summary = run_checks.check_summary(
        {"steps": 3, "auc": float("nan"), "logloss": 0.3}
    )
    assert summary["auc"] is None
    assert "all one class" in summary["warnings"][0]
    # A finite AUC passes without a warning.
    summary = run_checks.check_summary({"steps": 3, "auc": 0.7, "logloss": 1})
    assert "warnings" not in summary


def test_label_warnings():
    assert run_checks.label_warnings([0, 0, 0], "training")[0].startswith(
        "the training labels are all non-clicks (3 rows)"
    )
    assert "all clicks" in run_checks.label_warnings([1.0], "validation")[0]
    assert run_checks.label_warnings([0, 1], "training") == []


def _rows(path, lines, header=None, gzipped=False):
    text = "".join(f"{line}\n" for line in ([header] if header else []) + lines)
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_validation_that_is_the_training_file_is_refused(tmp_path):
    train = _rows(tmp_path / "train.txt", ["1\ta", "0\tb"])
    link = tmp_path / "link.txt"
    link.symlink_to(train)
    for val in (train, link):
        with pytest.raises(
            run_checks.ValidationOverlapError, match="is the training file"
        ):
            run_checks.check_validation_overlap([train], [val])
    copy = _rows(tmp_path / "copy.txt", ["1\ta", "0\tb"])
    with pytest.raises(run_checks.ValidationOverlapError, match="same content"):
        run_checks.check_validation_overlap([tmp_path / "t*.txt"], [copy])
    assert isinstance(
        run_checks.ValidationOverlapError("x"), run_checks.RunCheckError
    )


def test_shared_rows_are_a_warning(tmp_path):
    train = _rows(tmp_path / "train.gz", ["1\ta", "0\tb", "0\tc"], gzipped=True)
    val = _rows(tmp_path / "val.txt", ["0\tb", "1\td", "0\tc", "0\tc"])
    (warning,) = run_checks.check_validation_overlap([train], [val])
    assert warning.startswith("2 distinct rows of the 4 --val-data rows")
    other = _rows(tmp_path / "other.txt", ["1\tz"])
    assert run_checks.check_validation_overlap([train], [other]) == []


def test_a_shared_header_is_not_a_shared_row(tmp_path):
    train = _rows(tmp_path / "train.csv", ["1,a", "0,b"], header="id,click")
    val = _rows(tmp_path / "val.csv", ["1,c"], header="id,click")
    assert (
        run_checks.check_validation_overlap([train], [val], header=True) == []
    )


def test_the_row_check_is_skipped_for_large_training_files(
    tmp_path, monkeypatch
):
    train = _rows(tmp_path / "train.txt", ["1\ta", "0\tb"])
    val = _rows(tmp_path / "val.txt", ["1\ta"])
    monkeypatch.setattr(run_checks, "ROW_CHECK_MAX_BYTES", 1)
    assert run_checks.check_validation_overlap([train], [val]) == []


# Damaged model folders are named.


def _model_folder(path):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"data": {"kind": "criteo"}}))
    (path / "preprocessing").mkdir()
    return ModelDirectory(path)


def test_a_truncated_model_file_is_named(tmp_path):
    run = _model_folder(tmp_path / "run")
    run.model_path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelDirectoryError) as info:
        run.load_model()
    message = str(info.value)
    assert message.startswith(f"{run.model_path} cannot be read: it is damaged")
    assert "truncated" in message and "\n" not in message


def test_a_model_folder_without_preprocessing_is_named(tmp_path):
    run = _model_folder(tmp_path / "run")
    run.model_path.write_bytes(b"not read")
    (run.path / "preprocessing").rmdir()
    for load in (run.load_ranking, run.load_sequential):
        with pytest.raises(ModelDirectoryError, match="lacks preprocessing/"):
            load()


def test_unreadable_preprocessing_is_named(tmp_path, monkeypatch):
    run = _model_folder(tmp_path / "run")
    monkeypatch.setattr(ModelDirectory, "load_model", lambda self: "model")
    with pytest.raises(ModelDirectoryError) as info:
        run.load_ranking()
    assert str(info.value).startswith(f"{run.preprocessing_path} cannot be")


def test_a_nan_is_not_strict_json():
    # The property `strict_json` relies on.
    with pytest.raises(ValueError):
        json.dumps({"auc": math.nan}, allow_nan=False)
    assert _strict_loads(run_checks.strict_json({"auc": math.nan})) == {
        "auc": None,
        "warnings": ["auc is nan (not finite): written as null"],
    }


def test_staging_adopts_a_legacy_run_only_when_told(tmp_path):
    folder = tmp_path / "best_model"
    folder.mkdir()
    (folder / "model.keras").write_text("written before markers")
    with pytest.raises(UnsafeOutputError, match="no adrec run marker"):
        with staged_output(folder, overwrite=True):
            pytest.fail("the block must not run")

    def legacy(path):
        return (path / "model.keras").is_file() and ("model.keras",)

    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError, match=r"\(notes.txt\)"):
        with staged_output(folder, overwrite=True, legacy=legacy):
            pytest.fail("the block must not run")
    (folder / "notes.txt").unlink()
    with staged_output(folder, overwrite=True, legacy=legacy) as staging:
        (staging / "model.keras").write_text("new")
    assert (folder / "model.keras").read_text() == "new"
    assert run_folder.read_marker(folder)["kind"] == "train"
