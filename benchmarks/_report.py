"""Report helpers shared by quality.py, convergence.py and
training_throughput.py: command, date, machine, versions, md + JSON files.

Every report records what it needs to be judged on its own: the exact
command, the UTC date, the machine (CPU count and model, 1-minute load
average at the start and the end of the run) and the library versions.
"""

import datetime
import json
import os
import platform
import shlex
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

RESULTS_DIR = os.path.join(_REPO, "benchmarks", "results")


def command_line(script, argv):
    """The command as typed from the repository root."""
    return " ".join(
        ["python", f"benchmarks/{script}"] + [shlex.quote(a) for a in argv]
    )


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def load_average():
    """The (1, 5, 15)-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(load_at_start):
    """CPU count and model, platform, and load average at start and end."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def versions():
    """Versions of the libraries every number depends on."""
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
    return found


def header_lines(title, report):
    """The markdown lines every report starts with."""
    m = report["machine"]
    start, end = m["load_average_at_start"], m["load_average_at_end"]
    return [
        f"# {title}",
        "",
        f"- Command: `{report['command']}`",
        f"- Date: {report['date']} (total {report['seconds']:.0f} s)",
        f"- Machine: {m['nproc']} CPUs, {m['cpu_model']}; load average "
        f"(1, 5, 15 min) {start[0]}, {start[1]}, {start[2]} at the start, "
        f"{end[0]}, {end[1]}, {end[2]} at the end (above 0, other processes "
        "share the CPUs and timings are slower and noisier).",
        "- Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
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
