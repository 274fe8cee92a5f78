"""examples/taobao_schema.py: Taobao events as a ranking table whose
category history is a list column, trained through a schema file."""

import json
import pathlib
import runpy

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import samples

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def example():
    return runpy.run_path(str(SCRIPT / "taobao_schema.py"))


def test_history_holds_only_strictly_earlier_events(example, tmp_path):
    # Out of time order in the file, two users, a tie at t=30 for user u.
    (tmp_path / "events.csv").write_text(
        "u,i3,c3,pv,30\n"
        "u,i1,c1,pv,10\n"
        "v,i9,c9,buy,15\n"
        "u,i2,c2,cart,20\n"
        "u,i4,c4,fav,30\n"
        "u,i5,c5,pv,40\n"
    )
    rows = example["taobao_to_parquet"](
        tmp_path / "events.csv", tmp_path / "t.parquet", history=2
    )
    table = pq.read_table(tmp_path / "t.parquet").to_pydict()
    assert rows == 6
    assert table["timestamp"] == [10, 15, 20, 30, 30, 40]
    assert table["category"] == ["c1", "c9", "c2", "c3", "c4", "c5"]
    assert table["engaged"] == [0, 1, 1, 0, 1, 0]
    assert table["history"] == [
        [],  # u's first event
        [],  # v sees nothing of u
        ["c1"],
        ["c1", "c2"],  # the tie: c4 at the same second is not history
        ["c1", "c2"],  # nor c3
        ["c3", "c4"],  # the last 2, oldest first; not c5 itself
    ]


def test_example_trains_on_the_history_column(example, tmp_path, capsys):
    taobao = samples.shared_data_file(samples.TAOBAO_SAMPLE)
    if taobao is None:
        pytest.skip("the Taobao sample is absent (ADREC_DATA_DIR)")
    status = example["main"](
        ["--taobao", str(taobao), "--output", str(tmp_path), "--rows", "3000"]
    )
    assert status == 0
    table = pq.read_table(tmp_path / "taobao.parquet")
    list_type = table.schema.field("history").type
    assert pa.types.is_list(list_type)
    assert pa.types.is_string(list_type.value_type)
    rows = table.to_pylist()
    assert len(rows) == 3000
    # User 1's first three events, by hand from the CSV's first lines.
    first = [row for row in rows if row["user"] == "1"][:3]
    assert [row["timestamp"] for row in first] == [
        1511544070,
        1511561733,
        1511572885,
    ]
    assert [row["history"] for row in first] == [
        [],
        ["2520377"],
        ["2520377", "2520771"],
    ]
    # Every row: the same user's last 20 strictly earlier categories.
    for row in rows[::50]:
        earlier = [
            other["category"]
            for other in rows
            if other["user"] == row["user"]
            and other["timestamp"] < row["timestamp"]
        ]
        assert row["history"] == earlier[-20:]
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert schema["multi_hot"] == ["history"] and schema["group"] == "user"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 <= metrics["auc"] <= 1 and 0 <= metrics["gauc"] <= 1
    calibration = metrics["calibration"]
    assert 0 <= calibration["ece"] <= 1
    assert 0 < calibration["observed_ctr"] < 1  # both classes validate
    assert "GAUC by user" in capsys.readouterr().out
