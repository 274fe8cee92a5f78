"""`--set` and the flags go through the same typed checks (issue 33),
and `adrec compare` / `adrec train` report what they do."""

import pathlib

import pytest

from keras_adrec.cli import build_parser
from keras_adrec.cli import main
from keras_adrec.cli import train as train_command
from keras_adrec.jobs.train_ranking import TrainRankingSettings

TINY = ["--set", "bottom_units=[8]", "--set", "top_units=[8]"]


def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "command", [["train", "--data", f"criteo:{__file__}"], ["compare"]]
)
@pytest.mark.parametrize(
    "options, named",
    [
        (["--set", "batch_size=0"], ["--set", "`batch_size` must be"]),
        (["--batch-size", "0"], ["--batch-size", "`batch_size` must be"]),
        (["--batch-size", "-3"], ["--batch-size", "`batch_size` must be"]),
        (["--set", "foo=1"], ["foo", "Known fields: activation, batch_size"]),
        (["--set", "learning_rate=-0.1"], ["`learning_rate` must be"]),
        (["--set", "learning_rate=0"], ["`learning_rate` must be"]),
        (["--set", "num_heads=2.5"], ["`num_heads` must be an int"]),
        (["--set", "dropout=1.5"], ["`dropout` must lie in [0, 1)"]),
    ],
)
def test_bad_values_exit_2_naming_the_field(
    command, options, named, tmp_path, capsys
):
    argv = [*command, "--output", str(tmp_path / "out"), *options]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    for text in named:
        assert text in line, line


@pytest.mark.parametrize(
    "options, field",
    [
        (["--set", "epochs=0"], "`epochs` must be positive"),
        (["--epochs", "0"], "--epochs: `epochs` must be positive"),
        (["--epochs", "two"], "--epochs"),
    ],
)
def test_train_epochs_exit_2(options, field, tmp_path, capsys):
    argv = ["train", "--data", f"criteo:{__file__}"]
    argv += ["--output", str(tmp_path / "out"), *options]
    assert main(argv) == 2
    assert field in _one_line_error(capsys)


def test_an_int_learning_rate_is_a_float(tmp_path):
    args = build_parser().parse_args(
        [
            "train",
            "--data",
            f"criteo:{__file__}",
            "--output",
            str(tmp_path / "out"),
            "--set",
            "learning_rate=1",
            "--batch-size",
            "64",
            "--interaction",
            "DOT",
            *TINY,
        ]
    )
    task, settings = train_command.check(args)
    assert task == "ranking" and isinstance(settings, TrainRankingSettings)
    preset = settings.preset
    assert preset.learning_rate == 1.0 and type(preset.learning_rate) is float
    assert (preset.batch_size, preset.interaction) == (64, "dot")
    assert preset.bottom_units == (8,)


def test_scale_lr_scales_from_the_preset_batch(tmp_path):
    args = build_parser().parse_args(
        [
            "train",
            "--data",
            f"criteo:{__file__}",
            "--output",
            str(tmp_path / "out"),
            "--batch-size",
            "512",
            "--scale-lr",
        ]
    )
    _, settings = train_command.check(args)
    assert settings.preset.learning_rate == pytest.approx(0.1 * 512 / 128)


def test_settings_refuse_bad_values_naming_them(tmp_path):
    with pytest.raises(ValueError, match="`val_fraction`"):
        TrainRankingSettings(data="criteo:x", output=tmp_path, val_fraction=1)
    with pytest.raises(ValueError, match="`split_mode`"):
        TrainRankingSettings(data="criteo:x", output=tmp_path, split_mode="x")
    with pytest.raises(TypeError, match="RankingPreset"):
        from keras_adrec.models import get_preset

        TrainRankingSettings(
            data="criteo:x", output=tmp_path, preset=get_preset("rm4")
        )


def test_compare_lists_every_output_it_wrote(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--synthetic", "700", "--interactions", "dot,adrec"]
    argv += ["--seeds", "1", "--quiet", "--output", str(out), *TINY]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    listed = {pathlib.Path(line.split(": ", 1)[1]) for line in lines}
    # The run marker is adrec's bookkeeping, not an output to list.
    written = set(out.iterdir()) - {out / ".adrec-run.json"}
    assert (out / ".adrec-run.json").is_file()
    assert listed == written
    assert len(written) == 7
    assert out / "curves" in listed and out / "results.json" in listed


def test_train_progress_bar_knows_its_steps(criteo_file, tmp_path, capsys):
    # A bad row skipped: the epoch is what the vocabulary fit counted.
    lines = pathlib.Path(criteo_file).read_text().splitlines()[:300]
    lines[10] = "2" + lines[10][1:]
    data = tmp_path / "skip.txt"
    data.write_text("\n".join(lines) + "\n")
    argv = ["train", "--data", f"criteo:{data}", "--on-bad-lines", "skip"]
    argv += ["--output", str(tmp_path / "run"), "--batch-size", "32", *TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # 299 good rows, 239 after the 20% validation split: 8 steps of 32.
    assert "Unknown" not in out
    assert "8/8" in out
