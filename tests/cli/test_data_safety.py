"""Nothing a user owns is deleted, and a wrong run never looks finished
(issue 33, items 1 and 2; issue 26, item 8), through the `adrec` command.

Each case is a careless user's command from the issue: it runs in-process
(`keras_adrec.cli.main`), must end with one line `adrec: ...` and the
right exit status, and must leave the user's files as they were.
"""

import errno
import json
import os
import pathlib

import pytest

from keras_adrec import cli
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.run_folder import MARKER_FILE
from keras_adrec.training.run_folder import read_marker

TINY = ["--set", "bottom_units=[16]", "--set", "top_units=[16]"]


@pytest.fixture(scope="module")
def rows(criteo_file):
    with open(criteo_file, "rb") as f:
        return [f.readline() for _ in range(300)]


@pytest.fixture
def userdir(tmp_path, rows):
    """A user's folder holding training data and unrelated notes."""
    folder = tmp_path / "userdir"
    folder.mkdir()
    (folder / "c2k.txt").write_bytes(b"".join(rows))
    (folder / "notes.txt").write_text("my notes")
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory, rows):
    """A finished run of `adrec train` and its data (do not modify)."""
    folder = tmp_path_factory.mktemp("finished")
    data = folder / "day.txt"
    data.write_bytes(b"".join(rows))
    output = folder / "run"
    assert _train(data, output) == 0
    return data, output


def _train(data, output, *extra):
    return cli.main(
        ["train", "--data", f"criteo:{data}", "--output", str(output)]
        + ["--batch-size", "64", "--quiet", *TINY, *extra]
    )


def _line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("adrec: ")]
    assert len(lines) == 1, err
    return lines[0]


def _files(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(pathlib.Path(folder).rglob("*"))
        if p.is_file()
    }


def _copy_run(source, target):
    target.mkdir()
    for path in source.rglob("*"):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir()
        else:
            dest.write_bytes(path.read_bytes())
    return target


# Only our own runs are ever replaced.


def test_overwrite_never_deletes_the_data_folder(userdir, capsys):
    before = _files(userdir)
    status = _train(userdir / "c2k.txt", userdir, "--overwrite")
    message = _line(capsys)
    assert status == 2, message
    assert message.startswith(f"adrec: error: --output {userdir} contains")
    assert _files(userdir) == before


def test_overwrite_never_replaces_a_users_folder(userdir, tmp_path, capsys):
    data = tmp_path / "day.txt"
    data.write_bytes((userdir / "c2k.txt").read_bytes())
    before = _files(userdir)
    assert _train(data, userdir, "--overwrite") == 2
    message = _line(capsys)
    assert f"--output {userdir} holds no adrec run marker" in message
    assert _files(userdir) == before


def test_overwrite_never_deletes_a_regular_file(userdir, capsys):
    afile = userdir.parent / "afile.txt"
    afile.write_text("keep me")
    assert _train(userdir / "c2k.txt", afile, "--overwrite") == 2
    assert "is a file, not a folder" in _line(capsys)
    assert afile.read_text() == "keep me"


def test_an_output_under_a_file_names_the_flag(userdir, capsys):
    afile = userdir.parent / "afile.txt"
    afile.write_text("keep me")
    assert _train(userdir / "c2k.txt", afile / "run") == 2
    message = _line(capsys)
    assert message.startswith(f"adrec: error: --output {afile / 'run'}: ")
    assert "Errno" not in message


def test_output_dot_is_refused_in_one_line(userdir, monkeypatch, capsys):
    monkeypatch.chdir(userdir)
    before = _files(userdir)
    assert _train("c2k.txt", ".", "--overwrite") == 2
    assert "--output . is the current folder" in _line(capsys)
    empty = userdir.parent / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert _train(userdir / "c2k.txt", ".") == 2
    assert "--output . is the current folder" in _line(capsys)
    assert _files(userdir) == before and not any(empty.iterdir())


def test_compare_overwrite_keeps_a_users_file(userdir, capsys):
    output = userdir.parent / "D"
    output.mkdir()
    (output / "keep.txt").write_text("keep")
    status = cli.main(
        ["compare", "--output", str(output), "--overwrite", "--quiet"]
    )
    assert status == 2
    assert "holds no adrec run marker" in _line(capsys)
    assert (output / "keep.txt").read_text() == "keep"


def test_compare_does_not_replace_a_train_run(finished, tmp_path, capsys):
    _, run = finished
    copy = _copy_run(run, tmp_path / "run")
    status = cli.main(
        ["compare", "--output", str(copy), "--overwrite", "--quiet"]
    )
    assert status == 2
    assert "holds an adrec train run, not a compare run" in _line(capsys)


def test_a_checkpoint_folder_inside_the_output_is_refused(
    userdir, tmp_path, capsys
):
    output = tmp_path / "run"
    status = _train(
        userdir / "c2k.txt",
        output,
        "--checkpoint-dir",
        str(output / "ckpt"),
    )
    assert status == 2
    assert f"contains the input {output / 'ckpt'}" in _line(capsys)
    assert not output.exists()


def test_a_symlinked_input_inside_the_output_is_refused(
    finished, tmp_path, capsys
):
    _, run = finished
    copy = _copy_run(run, tmp_path / "run")
    (copy / "day.txt").write_bytes(finished[0].read_bytes())
    link = tmp_path / "data.txt"
    link.symlink_to(copy / "day.txt")
    before = _files(copy)
    assert _train(link, copy, "--overwrite") == 2
    assert f"contains the input {link}" in _line(capsys)
    assert _files(copy) == before


def test_the_run_folder_carries_the_marker(finished):
    _, run = finished
    marker = json.loads((run / MARKER_FILE).read_text())
    assert marker["kind"] == "train" and marker["state"] == "finished"
    assert set(marker["files"]) == {
        "config.json",
        "curve.csv",
        "metrics.json",
        "model.keras",
        "preprocessing",
    }


def test_overwrite_replaces_our_own_run(finished, tmp_path, capsys):
    data, run = finished
    copy = _copy_run(run, tmp_path / "run")
    (copy / "model.keras").write_bytes(b"the old model")
    assert _train(data, copy, "--overwrite") == 0
    assert (copy / "model.keras").read_bytes() != b"the old model"
    assert read_marker(copy)["state"] == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # Foreign files stop the next overwrite.
    (copy / "notes.txt").write_text("mine")
    assert _train(data, copy, "--overwrite") == 2
    message = _line(capsys)
    assert f"--output {copy} holds files adrec did not write (notes.txt)" in (
        message
    )
    assert (copy / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EROFS, "Read-only file system"),
    ],
)
def test_a_failed_write_is_one_line_and_keeps_the_old_run(
    finished, tmp_path, monkeypatch, capsys, code, words
):
    data, run = finished
    copy = _copy_run(run, tmp_path / "run")
    before = _files(copy)

    def fail(self, metrics):
        raise OSError(code, os.strerror(code), str(self.metrics_path))

    monkeypatch.setattr(ModelDirectory, "write_metrics", fail)
    status = _train(data, copy, "--overwrite")
    message = _line(capsys)
    assert status == 1, message
    assert message.startswith(f"adrec: error: cannot write --output {copy}")
    assert words in message
    assert _files(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_read_only_parent_is_one_line(userdir, tmp_path, monkeypatch, capsys):
    real_open = open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    status = _train(userdir / "c2k.txt", tmp_path / "out" / "run")
    message = _line(capsys)
    assert status == 1, message
    assert "cannot write --output" in message and "Permission denied" in message


def test_export_overwrite_keeps_a_users_version_folder(
    finished, tmp_path, capsys
):
    _, run = finished
    version = tmp_path / "serving" / "1"
    version.mkdir(parents=True)
    (version / "keep.txt").write_text("keep")
    status = cli.main(
        [
            "export",
            "--model",
            str(run),
            "--output",
            str(tmp_path / "serving"),
            "--version",
            "1",
            "--overwrite",
        ]
    )
    assert status == 2
    assert "holds no adrec run marker" in _line(capsys)
    assert _files(version) == {"keep.txt": b"keep"}


# A wrong run never looks finished.


def _strict(text):
    def refuse(constant):
        raise AssertionError(f"{constant} in strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_val_data_equal_to_the_training_file_is_an_error(userdir, capsys):
    data = userdir / "c2k.txt"
    output = userdir.parent / "run"
    assert _train(data, output, "--val-data", f"criteo:{data}") == 1
    assert "is the training file" in _line(capsys)
    assert not output.exists()


def test_val_data_with_the_training_content_is_an_error(userdir, capsys):
    copy = userdir.parent / "copy.txt"
    copy.write_bytes((userdir / "c2k.txt").read_bytes())
    status = _train(
        userdir / "c2k.txt",
        userdir.parent / "run",
        "--val-data",
        f"criteo:{copy}",
    )
    assert status == 1
    assert "has the same content as the training file" in _line(capsys)


def test_shared_rows_are_a_recorded_warning(userdir, rows, capsys):
    val = userdir.parent / "val.txt"
    val.write_bytes(b"".join(rows[200:280]))
    output = userdir.parent / "run"
    status = _train(userdir / "c2k.txt", output, "--val-data", f"criteo:{val}")
    assert status == 0
    warning = _line(capsys)
    assert warning.startswith("adrec: warning: ")
    assert "--val-data rows also occur in the training data" in warning
    metrics = _strict((output / "metrics.json").read_text())
    assert warning.removeprefix("adrec: warning: ") in metrics["warnings"]


def _one_class(rows):
    return b"".join(b"0" + row[row.index(b"\t") :] for row in rows)


def test_one_class_validation_is_a_warning_and_strict_json(
    userdir, rows, capsys
):
    val = userdir.parent / "val.txt"
    val.write_bytes(_one_class(rows[:60]))
    output = userdir.parent / "run"
    train = userdir.parent / "train.txt"
    train.write_bytes(b"".join(rows[60:]))
    status = _train(train, output, "--val-data", f"criteo:{val}")
    assert status == 0
    assert "labels are all one class" in _line(capsys)
    metrics = _strict((output / "metrics.json").read_text())
    assert metrics["auc"] is None
    assert any("all one class" in w for w in metrics["warnings"])


def test_evaluate_prints_strict_json_and_the_warning(finished, rows, capsys):
    _, run = finished
    data = run.parent / "zeros.txt"
    data.write_bytes(_one_class(rows[:50]))
    status = cli.main(
        ["evaluate", "--model", str(run), "--data", f"criteo:{data}"]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    metrics = _strict(out)
    assert metrics["auc"] is None
    assert "all one class" in err and "Traceback" not in err


def test_zero_training_steps_never_save_a_run(userdir, capsys):
    output = userdir.parent / "run"
    status = _train(userdir / "c2k.txt", output, "--set", "epochs=0")
    message = _line(capsys)
    # 2 once --set values are checked like flags; until then the run
    # itself refuses to save an untrained model.
    assert status in (1, 2), message
    assert "epochs" in message or "0 steps" in message
    assert not output.exists()


# Damaged model folders are named.


def test_a_model_folder_without_preprocessing_is_named(
    finished, tmp_path, capsys
):
    data, run = finished
    copy = _copy_run(run, tmp_path / "run")
    for path in sorted((copy / "preprocessing").iterdir()):
        path.unlink()
    (copy / "preprocessing").rmdir()
    for command in (
        ["evaluate", "--model", str(copy), "--data", f"criteo:{data}"],
        ["export", "--model", str(copy), "--output", str(tmp_path / "s")],
    ):
        status = cli.main(command)
        message = _line(capsys)
        assert status == 1, message
        assert f"{copy} lacks preprocessing/" in message
    assert not (tmp_path / "s" / "1").exists()


def test_a_truncated_model_is_named_by_export(finished, tmp_path, capsys):
    _, run = finished
    copy = _copy_run(run, tmp_path / "run")
    model = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(model[: len(model) // 2])
    status = cli.main(
        ["export", "--model", str(copy), "--output", str(tmp_path / "s")]
    )
    message = _line(capsys)
    assert status == 1, message
    assert f"{copy / 'model.keras'} cannot be read: it is damaged" in message


def test_one_class_training_labels_are_a_recorded_warning(
    userdir, rows, capsys
):
    train = userdir.parent / "train.txt"
    train.write_bytes(_one_class(rows[:240]))
    val = userdir.parent / "val.txt"
    val.write_bytes(b"".join(rows[240:]))
    output = userdir.parent / "run"
    assert _train(train, output, "--val-data", f"criteo:{val}") == 0
    warning = _line(capsys)
    assert "the training labels are all non-clicks (240 rows)" in warning
    metrics = _strict((output / "metrics.json").read_text())
    assert any("training labels" in w for w in metrics["warnings"])


def test_tune_never_writes_into_a_users_folder(userdir, capsys):
    pytest.importorskip("keras_tuner")
    before = _files(userdir)
    for extra in ([], ["--overwrite"]):
        status = cli.main(
            ["tune", "--data", f"criteo:{userdir / 'c2k.txt'}"]
            + ["--output", str(userdir), "--quiet", *extra]
        )
        assert status == 2
        assert f"--output {userdir} contains the input" in _line(capsys)
    other = userdir.parent / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    status = cli.main(
        ["tune", "--data", f"criteo:{userdir / 'c2k.txt'}"]
        + ["--output", str(other), "--quiet"]
    )
    assert status == 2
    assert "holds files but no adrec run marker" in _line(capsys)
    assert _files(userdir) == before
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_a_tune_write_failure_is_one_line(
    userdir, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("keras_tuner")
    from keras_adrec.jobs import tune as tune_job

    def disk_full(settings):
        path = pathlib.Path(settings.output) / "trials.md"
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(tune_job, "tune", disk_full)
    output = tmp_path / "tune"
    status = cli.main(
        ["tune", "--data", f"criteo:{userdir / 'c2k.txt'}"]
        + ["--output", str(output), "--quiet"]
    )
    message = _line(capsys)
    assert status == 1, message
    assert message.startswith(f"adrec: error: cannot write --output {output}")
    assert "No space left on device" in message
