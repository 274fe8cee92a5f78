"""Ad-Rec on a user's own table: Criteo rows as Parquet with a list column.

Converts the Criteo sample into a Parquet table in which the six
categorical fields C1-C6 become one `list<string>` column `c1_c6` (empty
fields left out of the list), writes a schema file naming the columns,
trains Ad-Rec (RM1) on it with `adrec train --schema` and reports AUC, GAUC
and ECE on the last 20% of the rows.

Criteo has no user id; GAUC groups the rows by the 93-value field C8, a
stand-in for the user or publisher column a real click log would name.

Run from the repository root:

    python examples/criteo_schema.py --output criteo_schema_run

The sample is read from `--criteo`, by default
`$ADREC_DATA_DIR/criteo/train_head10k.txt` (or `../shared/data/...` beside
the checkout).
"""

import argparse
import json
import os
import pathlib
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

DENSE = [f"I{i}" for i in range(1, 14)]
CATEGORICAL = [f"C{i}" for i in range(1, 27)]
LISTED = CATEGORICAL[:6]
GROUP = "C8"
SAMPLE = os.path.join("criteo", "train_head10k.txt")


def default_sample():
    root = os.environ.get("ADREC_DATA_DIR") or (
        pathlib.Path(__file__).resolve().parent.parent.parent
        / "shared"
        / "data"
    )
    return pathlib.Path(root) / SAMPLE


def criteo_to_parquet(criteo, parquet, rows=None):
    """Write Criteo TSV rows as Parquet: label `clicked`, I1-I13, C7-C26,
    and `c1_c6`, the non-empty values of C1-C6 as one list column."""
    table = pa_csv.read_csv(
        criteo,
        read_options=pa_csv.ReadOptions(
            column_names=["clicked", *DENSE, *CATEGORICAL]
        ),
        parse_options=pa_csv.ParseOptions(delimiter="\t"),
        convert_options=pa_csv.ConvertOptions(
            column_types={
                **{name: pa.string() for name in CATEGORICAL},
                **{name: pa.float64() for name in DENSE},
            },
            strings_can_be_null=False,
        ),
    )
    if rows is not None:
        table = table.slice(0, rows)
    lists = [
        [value for value in values if value]
        for values in zip(*(table.column(n).to_pylist() for n in LISTED))
    ]
    table = table.drop_columns(LISTED).append_column(
        "c1_c6", pa.array(lists, pa.list_(pa.string()))
    )
    table = table.set_column(
        0, "clicked", pc.cast(table.column("clicked"), pa.int64())
    )
    pq.write_table(table, parquet)
    return table.num_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criteo", default=None, help="Criteo TSV file")
    parser.add_argument("--output", required=True, help="a new folder")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    criteo = pathlib.Path(args.criteo) if args.criteo else default_sample()
    if not criteo.is_file():
        parser.error(f"no Criteo sample at {criteo}: pass --criteo PATH")
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    rows = criteo_to_parquet(criteo, output / "criteo.parquet", args.rows)
    schema = {
        "label": "clicked",
        "dense": DENSE,
        "categorical": [n for n in CATEGORICAL if n not in LISTED],
        "multi_hot": ["c1_c6"],
        "group": GROUP,
    }
    (output / "schema.json").write_text(json.dumps(schema, indent=1))
    # The command, in process: `adrec train --data parquet:... --schema ...`.
    from keras_adrec.cli import main as adrec

    status = adrec(
        [
            "train",
            "--data",
            f"parquet:{output / 'criteo.parquet'}",
            "--schema",
            str(output / "schema.json"),
            "--output",
            str(output / "run"),
            "--overwrite",
            "--epochs",
            str(args.epochs),
            "--batch-size",
            "128",
            "--quiet",
        ]
    )
    if status:
        return status
    metrics = json.loads((output / "run" / "metrics.json").read_text())
    print(
        f"{rows} rows, C1-C6 as one list column, Ad-Rec RM1, "
        f"{metrics['steps']} steps: validation AUC {metrics['auc']:.4f}, "
        f"GAUC by {GROUP} {metrics['gauc']:.4f}, "
        f"ECE {metrics['calibration']['ece']:.4f} (predicted CTR "
        f"{metrics['calibration']['predicted_ctr']:.4f}, observed "
        f"{metrics['calibration']['observed_ctr']:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
