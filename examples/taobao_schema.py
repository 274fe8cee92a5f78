"""Ad-Rec on a user's own table: Taobao events with a category history.

Turns the Taobao UserBehavior sample (user, item, category, behavior,
timestamp; no header) into a click-style ranking table: one row per event,
in time order, labelled 1 when the behavior is an engagement beyond a page
view (`buy`, `cart` or `fav`) and 0 for a page view (`pv`). Each row holds
the categorical columns `user`, `item` and `category` and one
`list<string>` column `history`: the categories of the user's last K
events (default 20) with a timestamp strictly before the row's own, oldest
first, so neither the row's own event nor a later or simultaneous one leaks
into its features. The script writes the table as Parquet and a schema file
naming the columns (group = `user`, for GAUC), trains Ad-Rec (RM1, small
MLPs) on it with `adrec train --schema`, and reports AUC, GAUC and ECE on
the last 20% of the rows, which in time order are the latest events.

Run from the repository root:

    python examples/taobao_schema.py --output taobao_schema_run

The sample is read from `--taobao`, by default
`$ADREC_DATA_DIR/taobao/UserBehavior_head84k.csv` (or `../shared/data/...`
beside the checkout).
"""

import argparse
import collections
import json
import os
import pathlib
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

COLUMNS = ["user", "item", "category", "behavior", "timestamp"]
SAMPLE = os.path.join("taobao", "UserBehavior_head84k.csv")
HISTORY = 20


def default_sample():
    root = os.environ.get("ADREC_DATA_DIR") or (
        pathlib.Path(__file__).resolve().parent.parent.parent
        / "shared"
        / "data"
    )
    return pathlib.Path(root) / SAMPLE


def category_history(users, categories, timestamps, length):
    """For each event, the categories of the same user's last `length`
    events with a strictly smaller timestamp, oldest first.

    The events must be sorted by timestamp. Events of one user that share
    a timestamp see none of each other.
    """
    past = collections.defaultdict(lambda: collections.deque(maxlen=length))
    histories = []
    pending = []  # events of the current timestamp, not yet history
    current = None
    for user, category, timestamp in zip(users, categories, timestamps):
        if timestamp != current:
            for seen_user, seen_category in pending:
                past[seen_user].append(seen_category)
            pending = []
            current = timestamp
        histories.append(list(past[user]))
        pending.append((user, category))
    return histories


def taobao_to_parquet(taobao, parquet, rows=None, history=HISTORY):
    """Write Taobao events as a Parquet ranking table in time order:
    label `engaged` (behavior other than `pv`), `user`, `item`,
    `category` and `history`, the user's earlier categories."""
    table = pa_csv.read_csv(
        taobao,
        read_options=pa_csv.ReadOptions(column_names=COLUMNS),
        convert_options=pa_csv.ConvertOptions(
            column_types={
                "user": pa.string(),
                "item": pa.string(),
                "category": pa.string(),
                "behavior": pa.string(),
                "timestamp": pa.int64(),
            },
            strings_can_be_null=False,
        ),
    )
    if rows is not None:
        table = table.slice(0, rows)
    # A stable sort: events of one second keep their file order.
    table = table.take(
        pc.sort_indices(table, sort_keys=[("timestamp", "ascending")])
    )
    histories = category_history(
        table.column("user").to_pylist(),
        table.column("category").to_pylist(),
        table.column("timestamp").to_pylist(),
        history,
    )
    engaged = pc.cast(pc.not_equal(table.column("behavior"), "pv"), pa.int64())
    out = pa.table(
        {
            "engaged": engaged,
            "user": table.column("user"),
            "item": table.column("item"),
            "category": table.column("category"),
            "history": pa.array(histories, pa.list_(pa.string())),
            "timestamp": table.column("timestamp"),
        }
    )
    pq.write_table(out, parquet)
    return out.num_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taobao", default=None, help="Taobao CSV file")
    parser.add_argument("--output", required=True, help="a new folder")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--history", type=int, default=HISTORY)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    taobao = pathlib.Path(args.taobao) if args.taobao else default_sample()
    if not taobao.is_file():
        parser.error(f"no Taobao sample at {taobao}: pass --taobao PATH")
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    rows = taobao_to_parquet(
        taobao, output / "taobao.parquet", args.rows, args.history
    )
    schema = {
        "label": "engaged",
        "categorical": ["user", "item", "category"],
        "multi_hot": ["history"],
        "group": "user",
    }
    (output / "schema.json").write_text(json.dumps(schema, indent=1))
    # The command, in process: `adrec train --data parquet:... --schema ...`.
    from keras_adrec.cli import main as adrec

    status = adrec(
        [
            "train",
            "--data",
            f"parquet:{output / 'taobao.parquet'}",
            "--schema",
            str(output / "schema.json"),
            "--output",
            str(output / "run"),
            "--overwrite",
            "--epochs",
            str(args.epochs),
            "--batch-size",
            "256",
            "--set",
            "bottom_units=[64]",
            "--set",
            "top_units=[64,32]",
            "--quiet",
        ]
    )
    if status:
        return status
    metrics = json.loads((output / "run" / "metrics.json").read_text())
    print(
        f"{rows} events, the last {args.history} categories as one list "
        f"column, Ad-Rec RM1, {metrics['steps']} steps: validation AUC "
        f"{metrics['auc']:.4f}, GAUC by user {metrics['gauc']:.4f}, "
        f"ECE {metrics['calibration']['ece']:.4f} (predicted rate "
        f"{metrics['calibration']['predicted_ctr']:.4f}, observed "
        f"{metrics['calibration']['observed_ctr']:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
