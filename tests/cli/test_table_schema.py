"""`adrec train --schema` on a user's Parquet or CSV table, and evaluate."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from keras_adrec.cli import main

TINY = ["--set", "bottom_units=[16]", "--set", "top_units=[16]"]
SCHEMA = {
    "label": "clicked",
    "dense": ["I1"],
    "categorical": ["C1"],
    "multi_hot": ["tags"],
    "group": "user",
}


def _table(rows=1200, seed=0):
    rng = np.random.default_rng(seed)
    tags = [
        [f"t{i}" for i in rng.choice(20, rng.integers(0, 4), replace=False)]
        for _ in range(rows)
    ]
    c1 = rng.integers(0, 10, rows)
    logit = 2.5 * np.array(["t1" in t for t in tags]) + (c1 == 0) - 1.0
    clicked = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return pa.table(
        {
            "clicked": clicked,
            "I1": rng.exponential(3, rows),
            "C1": [f"c{v}" for v in c1],
            "tags": pa.array(tags, pa.list_(pa.string())),
            "user": rng.integers(0, 40, rows),
        }
    )


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    data = folder / "data"
    data.mkdir()
    table = _table()
    pq.write_table(table.slice(0, 600), data / "part-0.parquet")
    pq.write_table(table.slice(600), data / "part-1.parquet")
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    return folder


def _train(data, schema, output, *extra):
    return main(
        ["train", "--data", data, "--output", str(output), "--quiet"]
        + (["--schema", str(schema)] if schema else [])
        + ["--batch-size", "64", *TINY, *extra]
    )


@pytest.fixture(scope="module")
def trained_table(table_dir):
    out = table_dir / "run"
    status = _train(
        f"parquet:{table_dir / 'data'}", table_dir / "schema.json", out
    )
    assert status == 0
    return out


def test_train_and_evaluate_a_parquet_table(table_dir, trained_table, capsys):
    out = trained_table
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["gauc"] <= 1
    assert set(metrics["calibration"]) == {
        "ece",
        "predicted_ctr",
        "observed_ctr",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["schema"]["multi_hot"] == ["tags"]
    capsys.readouterr()
    status = main(
        [
            "evaluate",
            "--model",
            str(out),
            "--data",
            f"parquet:{table_dir / 'data' / 'part-1.parquet'}",
        ]
    )
    assert status == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["examples"] == 600
    assert 0 <= evaluated["gauc"] <= 1 and 0 <= evaluated["auc"] <= 1


def test_train_on_csv_with_bar_joined_lists(table_dir, tmp_path, capsys):
    table = _table(400, seed=1)
    joined = pa.array(["|".join(t) for t in table.column("tags").to_pylist()])
    table = table.set_column(3, "tags", joined)
    pa_csv.write_csv(table, tmp_path / "t.csv")
    schema = dict(SCHEMA, combiner="attention")
    del schema["group"]
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    out = tmp_path / "run"
    status = _train(f"csv:{tmp_path / 't.csv'}", tmp_path / "schema.json", out)
    assert status == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "gauc" not in metrics and metrics["steps"] > 0


def test_table_without_schema_is_a_usage_error(table_dir, tmp_path, capsys):
    status = _train(f"parquet:{table_dir / 'data'}", None, tmp_path / "r")
    assert status == 2
    assert "--schema" in capsys.readouterr().err


def test_missing_column_exits_1_naming_column_and_file(
    table_dir, tmp_path, capsys
):
    schema = dict(SCHEMA, categorical=["C1", "C9"])
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    status = _train(
        f"parquet:{table_dir / 'data'}",
        tmp_path / "schema.json",
        tmp_path / "r",
    )
    assert status == 1
    err = capsys.readouterr().err.strip()
    assert "part-0.parquet" in err and "C9" in err
    assert len(err.splitlines()) == 1


def test_bad_schema_file_exits_1_naming_it(table_dir, tmp_path, capsys):
    (tmp_path / "schema.json").write_text('{"dense": ["I1"]}')
    status = _train(
        f"parquet:{table_dir / 'data'}",
        tmp_path / "schema.json",
        tmp_path / "r",
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "schema.json" in err and "label" in err


def test_export_serves_the_list_column(trained_table, tmp_path):
    import tensorflow as tf

    from keras_adrec.data import MultiHotLookup
    from keras_adrec.export import export_for_serving
    from keras_adrec.training import ModelDirectory

    run = ModelDirectory(trained_table)
    model, preprocessor, _ = run.load_ranking()
    lookup = MultiHotLookup.load_artifacts(run.preprocessing_path)
    dense = tf.constant([[1.0], [2.0]])
    categorical = tf.constant([["c0"], ["c4"]])
    bags = [["t1", "t2"], []]
    inputs = preprocessor({"dense": dense, "categorical": categorical})
    inputs["multi_hot"] = lookup([tf.ragged.constant(bags, tf.string)])
    expected = model(inputs).numpy()

    loaded = tf.saved_model.load(
        str(export_for_serving(trained_table, tmp_path))
    )
    served = loaded.signatures["serving_default"](
        dense=dense,
        categorical=categorical,
        multi_hot=tf.constant([[["t1", "t2", ""]], [["", "", ""]]]),
    )["probability"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    "I1": tf.train.Feature(
                        float_list=tf.train.FloatList(value=[d])
                    ),
                    "C1": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[c.encode()])
                    ),
                    "tags": tf.train.Feature(
                        bytes_list=tf.train.BytesList(
                            value=[t.encode() for t in bag]
                        )
                    ),
                }
            )
        ).SerializeToString()
        for d, c, bag in zip([1.0, 2.0], ["c0", "c4"], bags)
    ]
    served = loaded.signatures["serve_examples"](
        examples=tf.constant(examples)
    )["probability"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)


def test_table_export_warmup_records_replay(trained_table, tmp_path):
    import tensorflow as tf

    from keras_adrec.export import export_for_serving
    from keras_adrec.export import warmup

    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    path = export_for_serving(trained_table, tmp_path)
    loaded = tf.saved_model.load(str(path))
    requests = warmup.read_warmup_requests(path)
    assert len(requests) == 6
    for signature, inputs in requests:
        served = loaded.signatures[signature](
            **{name: tf.constant(value) for name, value in inputs.items()}
        )["probability"].numpy()
        assert served.shape == (len(next(iter(inputs.values()))), 1)
        assert np.isfinite(served).all()
    # The raw signature's list column is part of the requests.
    assert requests[0][1]["multi_hot"].ndim == 3
