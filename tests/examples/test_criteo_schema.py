"""examples/criteo_schema.py: Criteo rows as a Parquet table with a list
column, trained through a schema file."""

import json
import pathlib
import runpy

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import samples

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "examples"


def test_example_trains_on_the_list_column(tmp_path, capsys):
    criteo = samples.shared_data_file(samples.CRITEO_SAMPLE)
    if criteo is None:
        pytest.skip("the Criteo sample is absent (ADREC_DATA_DIR)")
    module = runpy.run_path(str(SCRIPT / "criteo_schema.py"))
    status = module["main"](
        ["--criteo", str(criteo), "--output", str(tmp_path), "--rows", "3000"]
    )
    assert status == 0
    table = pq.read_table(tmp_path / "criteo.parquet")
    list_type = table.schema.field("c1_c6").type
    assert pa.types.is_list(list_type)
    assert pa.types.is_string(list_type.value_type)
    assert "C1" not in table.column_names and table.num_rows == 3000
    first = table.column("c1_c6")[0].as_py()
    assert 1 <= len(first) <= 6
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["auc"] > 0.55  # real rows; chance is 0.5
    assert 0 <= metrics["gauc"] <= 1 and metrics["calibration"]["ece"] < 0.2
    assert "GAUC by C8" in capsys.readouterr().out
