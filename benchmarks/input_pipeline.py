"""Input pipeline throughput, side by side on the same files.

Measures rows per second of:

- the synthetic generator itself (numpy chunks, and its `tf.data` stream),
  and of writing its rows as Criteo TSV and as Parquet;
- `keras_adrec.data.criteo_dataset` (Criteo TSV -> raw batches), alone and
  followed by `FeaturePreprocessor` (`keras_adrec.data.preprocess`);
- `keras_adrec.data.parquet_dataset` on the same rows, alone and
  preprocessed;
- references: `pyarrow.csv.read_csv` and `pyarrow.parquet.read_table` of the
  same files (whole-file reads into Arrow tables, multi-threaded and with
  one thread; no batching, no tensors).

Data: a synthetic Criteo-format file of `--rows` rows (`SyntheticCriteo`,
written to a temporary directory), and the real Criteo sample
`criteo/train_head10k.txt` when the shared data directory has it
(`benchmarks.report.shared_data_file`: `ADREC_DATA_DIR`, else
`../shared/data` beside the checkout; read in place, its Parquet copy lives
in the temporary directory only). The real
sample has 10,000 rows, so its tf.data pipelines repeat it to
`--real-passes` passes.

Usage (from the repository root):
    python -m benchmarks.input_pipeline
    python -m benchmarks.input_pipeline --rows 2000 --batch-sizes 128 \\
        --real-passes 1 --output-dir /tmp/results

Writes `input_pipeline.md` and `input_pipeline.json` into `--output-dir`
(default `benchmarks/results`) with the command, machine, versions and date.
"""

import argparse
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pyarrow as pa  # noqa: E402
import pyarrow.csv as pa_csv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from keras_adrec.data import CRITEO_SCHEMA  # noqa: E402
from keras_adrec.data import FeaturePreprocessor  # noqa: E402
from keras_adrec.data import SyntheticCriteo  # noqa: E402
from keras_adrec.data import criteo_dataset  # noqa: E402
from keras_adrec.data import parquet_dataset  # noqa: E402
from keras_adrec.data import preprocess  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

REPORT_NAME = "input_pipeline"
REAL_SAMPLE = "criteo/train_head10k.txt"
COLUMN_NAMES = (
    [CRITEO_SCHEMA.label_name]
    + CRITEO_SCHEMA.dense_names
    + CRITEO_SCHEMA.categorical_names
)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=500_000, help="synthetic rows"
    )
    parser.add_argument(
        "--batch-sizes",
        default="128,4096",
        help="comma-separated batch sizes of the tf.data pipelines",
    )
    parser.add_argument(
        "--real-passes",
        type=int,
        default=20,
        help="passes over the 10k-row real sample per tf.data measurement",
    )
    parser.add_argument(
        "--skip-real", action="store_true", help="skip the real sample"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output-dir",
        default=_report.RESULTS_DIR,
        help="where input_pipeline.md and input_pipeline.json go",
    )
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    if args.rows < 1 or not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("--rows and --batch-sizes must be positive")
    if args.real_passes < 1:
        parser.error("--real-passes must be positive")
    return args


class Clock:
    """Wall seconds and CPU seconds (all threads of this process)."""

    def __enter__(self):
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def iterate(dataset, max_batches=None):
    """Pull batches through Python; returns (rows, clock)."""
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    rows = 0
    with Clock() as clock:
        for _, label in dataset:
            rows += int(label.shape[0])
    return rows, clock


def timed(function):
    with Clock() as clock:
        value = function()
    return value, clock


class Results:
    def __init__(self):
        self.rows = []

    def add(self, data, pipeline, rows, clock, batch_size=None, note=""):
        record = {
            "data": data,
            "pipeline": pipeline,
            "batch_size": batch_size,
            "rows": int(rows),
            "seconds": round(clock.wall, 4),
            "rows_per_s": round(rows / max(clock.wall, 1e-9)),
            "cpu_seconds": round(clock.cpu, 4),
            "rows_per_cpu_s": round(rows / max(clock.cpu, 1e-9)),
            "note": note,
        }
        self.rows.append(record)
        print(
            f"{data:<18} {pipeline:<48} batch={batch_size or '-':<5} "
            f"{rows:>9} rows {clock.wall:8.3f} s "
            f"{record['rows_per_s']:>9} rows/s "
            f"{record['rows_per_cpu_s']:>9} rows/cpu-s",
            flush=True,
        )


def arrow_csv_read(path, use_threads):
    column_types = {CRITEO_SCHEMA.label_name: pa.int8()}
    column_types.update({n: pa.int64() for n in CRITEO_SCHEMA.dense_names})
    column_types.update(
        {n: pa.string() for n in CRITEO_SCHEMA.categorical_names}
    )
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(
            column_names=COLUMN_NAMES, use_threads=use_threads
        ),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pa_csv.ConvertOptions(column_types=column_types),
    )
    return table.num_rows


def measure_source(results, name, tsv, parquet, rows, passes, args):
    """All pipelines over one TSV file and its Parquet copy."""
    repeat = passes > 1
    fit_dataset = criteo_dataset(tsv, 4096)
    preprocessor, clock = timed(
        lambda: FeaturePreprocessor.fit(fit_dataset, CRITEO_SCHEMA)
    )
    results.add(
        name,
        "FeaturePreprocessor.fit (one pass, vocabularies)",
        rows,
        clock,
        4096,
        note=f"vocabulary sizes sum {sum(preprocessor.vocabulary_sizes)}",
    )
    for batch_size in args.batch_sizes:
        batches = math.ceil(rows * passes / batch_size) if repeat else None
        pipelines = [
            ("criteo_dataset (TSV)", lambda: criteo_dataset(
                tsv, batch_size, repeat=repeat
            )),
            ("criteo_dataset + FeaturePreprocessor", lambda: preprocess(
                criteo_dataset(tsv, batch_size, repeat=repeat), preprocessor
            )),
            ("parquet_dataset", lambda: parquet_dataset(
                parquet, batch_size, repeat=repeat
            )),
            ("parquet_dataset + FeaturePreprocessor", lambda: preprocess(
                parquet_dataset(parquet, batch_size, repeat=repeat),
                preprocessor,
            )),
        ]  # fmt: skip
        for label, make in pipelines:
            read, clock = iterate(make(), batches)
            results.add(name, label, read, clock, batch_size)
    for use_threads in (True, False):
        threads = "all threads" if use_threads else "1 thread"
        total, clock = timed(
            lambda: sum(arrow_csv_read(tsv, use_threads) for _ in range(passes))
        )
        results.add(
            name,
            f"pyarrow.csv.read_csv ({threads})",
            total,
            clock,
            note="whole file to an Arrow table",
        )
        total, clock = timed(
            lambda: sum(
                pq.read_table(parquet, use_threads=use_threads).num_rows
                for _ in range(passes)
            )
        )
        results.add(
            name,
            f"pyarrow.parquet.read_table ({threads})",
            total,
            clock,
            note="whole file to an Arrow table",
        )


def markdown(report, args):
    lines = _report.header_lines("Input pipeline throughput", report) + [
        f"- Data: `synthetic-criteo` is SYNTHETIC ({args.rows} rows from "
        f"`SyntheticCriteo(seed={args.seed})`, Criteo TSV and Parquet "
        "written to a temporary directory); "
        + (
            f"`real-criteo-10k` is the real sample `{REAL_SAMPLE}` "
            f"(10,000 rows; tf.data pipelines repeat it "
            f"{args.real_passes} times)."
            if report["real_data"]
            else "the real Criteo sample was not measured."
        ),
        "- rows/s: rows pulled through Python per second of wall time, one "
        "full pass from building the dataset (startup included). "
        "rows/CPU-s: rows per CPU second of this process (all its threads), "
        "less sensitive to other load; a pipeline using 2 threads fully "
        "shows half its wall rate. Machine noise between runs is about "
        "10-30%: compare rows of one run.",
        "",
    ]
    columns = [
        ("data", "l"),
        ("pipeline", "l"),
        ("batch", "r"),
        ("rows", "r"),
        ("seconds", "r"),
        ("rows/s", "r"),
        ("rows/CPU-s", "r"),
        ("note", "l"),
    ]
    rows = [
        [
            r["data"],
            r["pipeline"],
            r["batch_size"] or "",
            f"{r['rows']:,}",
            f"{r['seconds']:.3f}",
            f"{r['rows_per_s']:,}",
            f"{r['rows_per_cpu_s']:,}",
            r["note"],
        ]
        for r in report["results"]
    ]
    return lines + _report.markdown_table(columns, rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    command = _report.command_line(REPORT_NAME, argv)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    _report.log(f"{command}\nload average at start: {load_at_start}")
    results = Results()
    generator = SyntheticCriteo(
        rows_per_day=args.rows, num_days=1, seed=args.seed
    )
    real_path = None
    if not args.skip_real:
        real_path = _report.shared_data_file(REAL_SAMPLE)
    with tempfile.TemporaryDirectory() as directory:
        data = "synthetic-criteo"
        _, clock = timed(lambda: sum(1 for _ in generator.iter_chunks()))
        results.add(data, "SyntheticCriteo.iter_chunks (numpy)", args.rows,
                    clock)  # fmt: skip
        for batch_size in args.batch_sizes:
            read, clock = iterate(generator.dataset(batch_size=batch_size))
            results.add(data, "SyntheticCriteo.dataset (tf.data)", read,
                        clock, batch_size)  # fmt: skip
        (tsv,), clock = timed(lambda: generator.write_tsv(directory))
        results.add(data, "SyntheticCriteo.write_tsv", args.rows, clock)
        (parquet,), clock = timed(lambda: generator.write_parquet(directory))
        results.add(data, "SyntheticCriteo.write_parquet", args.rows, clock)
        measure_source(results, data, tsv, parquet, args.rows, 1, args)

        if real_path is not None:
            real_parquet = os.path.join(directory, "real_head10k.parquet")
            table = pa_csv.read_csv(
                str(real_path),
                read_options=pa_csv.ReadOptions(column_names=COLUMN_NAMES),
                parse_options=pa_csv.ParseOptions(
                    delimiter="\t", quote_char=False
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={
                        n: pa.string() for n in CRITEO_SCHEMA.categorical_names
                    }
                ),
            )
            pq.write_table(table, real_parquet)
            measure_source(
                results,
                "real-criteo-10k",
                str(real_path),
                real_parquet,
                table.num_rows,
                args.real_passes,
                args,
            )
    report = {
        "benchmark": REPORT_NAME,
        "command": command,
        "date": _report.utc_now(),
        "seconds": time.perf_counter() - start,
        "machine": _report.machine(load_at_start),
        "versions": _report.versions(pa),
        "synthetic_data": {
            "synthetic": True,
            "generator": "keras_adrec.data.SyntheticCriteo",
            "config": generator.get_config(),
        },
        # The sample's name in the shared data directory, not where it lies.
        "real_data": REAL_SAMPLE if real_path is not None else None,
        "results": results.rows,
    }
    _report.write_report(
        args.output_dir, REPORT_NAME, report, markdown(report, args)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
