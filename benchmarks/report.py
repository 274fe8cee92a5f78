"""What every benchmark report shares: the command, date, machine,
versions, the data-sample lookup, the spread label and the md + JSON files.

Every report records what it needs to be judged on its own: the exact
command (`python -m benchmarks.NAME ...`, run from the repository root),
the UTC date, the machine (CPU count and model, load average at the start
and the end of the run) and the library versions.
"""

import datetime
import json
import os
import pathlib
import platform
import shlex

from keras_adrec.utils import statistics

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = str(REPO_ROOT / "benchmarks" / "results")


def command_line(name, argv):
    """The command as typed from the repository root.

    Args:
        name: the benchmark module's name under `benchmarks` (`"quality"`).
        argv: the arguments it was given.
    """
    return " ".join(
        ["python", "-m", f"benchmarks.{name}"]
        + [shlex.quote(str(a)) for a in argv]
    )


def shared_data_dir():
    """The directory of the research-only data samples (it may not exist):
    `ADREC_DATA_DIR`, else `../shared/data` beside the checkout."""
    env = os.environ.get("ADREC_DATA_DIR")
    if env:
        return pathlib.Path(env)
    return REPO_ROOT.parent / "shared" / "data"


def shared_data_file(relative):
    """`shared_data_dir() / relative`, or None if it is absent.

    The samples are read in place, never copied into the repository.
    """
    path = shared_data_dir() / relative
    return path if path.is_file() else None


def spread_label(seeds):
    """The header of a spread: "mean ± sample std (ddof=1) over N seeds"."""
    return f"{statistics.STD_LABEL} over {seeds} seed{'s' * (seeds != 1)}"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def load_average():
    """The (1, 5, 15)-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def _first_cpu_fields(cpuinfo="/proc/cpuinfo"):
    """`{field: value}` of the first CPU listed in `cpuinfo`, or None."""
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return None
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_model():
    fields = _first_cpu_fields() or {}
    return fields.get("model name") or platform.processor() or "unknown"


# /proc/cpuinfo flags that decide how fast our kernels run (vector width,
# native bfloat16), in the order a report names them.
CPU_FEATURE_FLAGS = (
    ("avx2", "AVX2"),
    ("fma", "FMA"),
    ("avx512f", "AVX-512F"),
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("amx_bf16", "AMX BF16"),
)


def cpu_identity(cpuinfo="/proc/cpuinfo"):
    """The first CPU's family, model and speed-relevant instruction sets.

    Virtual machines often name every CPU generation alike ("AMD EPYC"),
    so the model name alone does not tell two machines apart.

    Returns:
        `{"family": str, "model": str, "features": [str, ...]}`, with
        `None` for what `cpuinfo` does not list; `{}` if it is unreadable.
    """
    fields = _first_cpu_fields(cpuinfo)
    if fields is None:
        return {}
    flags = set(fields.get("flags", "").split())
    return {
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "features": [
            label for flag, label in CPU_FEATURE_FLAGS if flag in flags
        ],
    }


def cpu_description(machine_facts):
    """`AMD EPYC (family 23, model 1; AVX2, FMA, no AVX-512)`: the model
    name and, for reports that recorded it, the identity."""
    name = machine_facts["cpu_model"]
    identity = machine_facts.get("cpu_identity")
    if not identity:
        return name
    parts = [
        f"{key} {identity[key]}"
        for key in ("family", "model")
        if identity.get(key) is not None
    ]
    features = list(identity.get("features") or [])
    if not any(f.startswith("AVX-512") for f in features):
        features.append("no AVX-512")
    detail = ", ".join(parts)
    if features:
        detail = "; ".join(filter(None, [detail, ", ".join(features)]))
    return f"{name} ({detail})"


# Environment variables that change what TensorFlow, XLA or the math
# libraries do (and so the timings); a report records those that are set.
TUNING_VARIABLES = (
    "XLA_FLAGS",
    "TF_XLA_FLAGS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
)


def tuning_environment():
    """`{name: value}` of the `TUNING_VARIABLES` set in this process."""
    return {
        name: os.environ[name]
        for name in TUNING_VARIABLES
        if name in os.environ
    }


def machine(load_at_start, **extra):
    """CPU count and model, platform, load average at start and end, the
    tuning environment variables set, and any `extra` facts."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_identity": cpu_identity(),
        "platform": platform.platform(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "environment": tuning_environment(),
        **extra,
    }


def versions(*extra):
    """Versions of the libraries every number depends on, and of the
    `extra` modules (already imported) named."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_adrec

    found = {
        "python": platform.python_version(),
        "keras_adrec": keras_adrec.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        import keras_rs

        found["keras_rs"] = keras_rs.__version__
    except ImportError:
        pass
    for module in extra:
        found[module.__name__] = module.__version__
    return found


def header_lines(title, report, machine_note=""):
    """The markdown lines every report starts with."""
    m = report["machine"]
    start, end = m["load_average_at_start"], m["load_average_at_end"]
    return [
        f"# {title}",
        "",
        f"- Command: `{report['command']}`",
        f"- Date: {report['date']} (total {report['seconds']:.0f} s)",
        f"- Machine: {m['nproc']} CPUs, {cpu_description(m)}; load average "
        f"(1, 5, 15 min) {start[0]}, {start[1]}, {start[2]} at the start, "
        f"{end[0]}, {end[1]}, {end[2]} at the end (a load average decays "
        "over minutes: the start's counts work just before this run, the "
        "end's this run's own threads too; other work on the CPUs makes "
        f"timings slower and noisier){machine_note}.",
        *_environment_line(m),
        "- Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
    ]


def _environment_line(machine_facts):
    """The environment line of a report's header, if any variable was set
    (reports written before it was recorded have none)."""
    environment = machine_facts.get("environment") or {}
    if not environment:
        return []
    return [
        "- Environment: "
        + ", ".join(f"`{name}={value}`" for name, value in environment.items())
    ]


def markdown_table(columns, rows):
    """A markdown table; `columns` is a list of `(header, align)`."""
    lines = [
        "| " + " | ".join(h for h, _ in columns) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for _, a in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def fmt(value, pattern="{:.4f}", missing="–"):
    return missing if value is None else pattern.format(value)


def write_report(output_dir, name, report, markdown_lines):
    """Write `name.json` and `name.md` into `output_dir`; print the md."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, f"{name}.json")
    md_path = os.path.join(output_dir, f"{name}.md")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, default=_json_default)
        f.write("\n")
    text = "\n".join(markdown_lines).rstrip() + "\n"
    with open(md_path, "w") as f:
        f.write(text)
    print()
    print(text, flush=True)
    print(f"Wrote {md_path} and {json_path}", flush=True)
    return md_path, json_path


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def log(message):
    print(message, flush=True)
