"""The decision rule of `benchmarks/robustness_protocol.md`, applied.

Reads `.runs.jsonl` files of `benchmarks.robustness` (stage 0 and the
candidates), and prints, per candidate (Ad-Rec runs with one set of
`--set` overrides, at the preset's rate), the data sets it passes
(`m_d >= B_d` and `s_d <= 2 S_d`, baselines from the stage-0 runs), its
rank key (passes, mean worst seed, mean of means) and the paired
later-period difference to the current default (averaged over the data
sets per seed, mean ± standard error).

Usage (from the repository root):
    python -m benchmarks.robustness_decision \
        --runs benchmarks/results/robustness-stage0/robustness.runs.jsonl,\
benchmarks/results/robustness-r1/r1.runs.jsonl \
        --default '{}'
"""

import argparse
import json
import math
import statistics
import sys

from benchmarks.robustness import read_runs

ACCEPTANCE = ("criteo", "avazu", "movielens")
BASELINES = ("dot", "fm", "autoint", "dcnv2")
# Rule 4: mean worst seeds within this are a tie (the default keeps it).
TIE = 0.002


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="comma-separated files")
    p.add_argument(
        "--default",
        default="{}",
        help="JSON overrides of the current default (default: none)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="candidates' seeds")
    p.add_argument(
        "--baseline-seeds",
        default=None,
        help="seeds of the baselines' bars B and S (default: --seeds)",
    )
    p.add_argument("--datasets", default=",".join(ACCEPTANCE))
    args = p.parse_args(argv)
    args.runs = [x for x in args.runs.split(",") if x.strip()]
    args.default = json.dumps(json.loads(args.default), sort_keys=True)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.baseline_seeds = (
        args.seeds
        if args.baseline_seeds is None
        else [int(s) for s in args.baseline_seeds.split(",")]
    )
    args.datasets = [d for d in args.datasets.split(",") if d]
    return args


def _stats(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return mean, std


def _subset(by_seed, seeds):
    """`by_seed` restricted to `seeds`, or None when one is missing."""
    if any(s not in by_seed for s in seeds):
        return None
    return {s: by_seed[s] for s in seeds}


def decide(runs, default, seeds, datasets, baseline_seeds=None):
    """Rows of the rule for every Ad-Rec candidate with all `seeds`; the
    baselines' bars over `baseline_seeds` (default: `seeds`)."""
    baseline_seeds = seeds if baseline_seeds is None else baseline_seeds
    # Stage-0 baselines: the preset's own rate, no overrides.
    later = {}
    for r in runs:
        if r["later_auc"] is None:
            continue
        if r["seed"] not in seeds and r["seed"] not in baseline_seeds:
            continue
        key = (
            r["dataset"],
            r["interaction"],
            json.dumps(r["overrides"], sort_keys=True),
            r["learning_rate"],
        )
        later.setdefault(key, {})[r["seed"]] = r["later_auc"]
    bars = {}
    for d in datasets:
        means, stds = [], []
        for i in BASELINES:
            # the preset's rate: the rate of the no-override adrec runs
            candidates = [
                k
                for k in later
                if k[0] == d
                and k[1] == i
                and k[2] == "{}"
                and _subset(later[k], baseline_seeds) is not None
            ]
            preset_rate = {
                k[3]
                for k in later
                if k[0] == d and k[1] == "adrec" and k[2] == "{}"
            }
            candidates = [k for k in candidates if k[3] in preset_rate]
            if not candidates:
                continue
            by_seed = _subset(later[candidates[0]], baseline_seeds)
            m, s = _stats(list(by_seed.values()))
            means.append((m, i))
            stds.append((s, i))
        if means:
            bars[d] = (max(means), max(stds))
    rows = []
    candidates = sorted({(k[2]) for k in later if k[1] == "adrec"})
    for o in candidates:
        per = {}
        for d in datasets:
            keys = [
                k
                for k in later
                if k[0] == d
                and k[1] == "adrec"
                and k[2] == o
                and _subset(later[k], seeds) is not None
            ]
            if keys and d in bars:
                per[d] = _subset(later[keys[0]], seeds)
        if len(per) != len(datasets):
            continue
        passes, worst, means = [], [], []
        for d, by_seed in per.items():
            m, s = _stats(list(by_seed.values()))
            (b, b_name), (big, big_name) = bars[d]
            if m >= b and s <= 2 * big:
                passes.append(d)
            worst.append(min(by_seed.values()))
            means.append(m)
        rows.append(
            {
                "overrides": o,
                "passes": passes,
                "mean_worst": statistics.fmean(worst),
                "mean_mean": statistics.fmean(means),
                "per": per,
            }
        )
    base = next((r for r in rows if r["overrides"] == default), None)
    for r in rows:
        if base is None:
            continue
        diffs = [
            statistics.fmean(
                r["per"][d][s] - base["per"][d][s] for d in datasets
            )
            for s in seeds
        ]
        r["paired_mean"] = statistics.fmean(diffs)
        r["paired_se"] = statistics.stdev(diffs) / math.sqrt(len(diffs))
    for r in rows:
        r["replaces_default"] = base is not None and _replaces(r, base)
    rows.sort(
        key=lambda r: (len(r["passes"]), r["mean_worst"], r["mean_mean"]),
        reverse=True,
    )
    return bars, rows


def _replaces(r, base):
    """Rules 2-4: ranks above the default beyond a tie (same passes and
    mean worst seeds within `TIE`), and loses no accuracy beyond one
    standard error of the paired difference."""
    if r is base:
        return False
    more = len(r["passes"]) > len(base["passes"])
    same = len(r["passes"]) == len(base["passes"])
    better_worst = r["mean_worst"] > base["mean_worst"] + TIE
    return (more or (same and better_worst)) and (
        r["paired_mean"] >= -r["paired_se"]
    )


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _, runs = read_runs(args.runs)
    bars, rows = decide(
        runs, args.default, args.seeds, args.datasets, args.baseline_seeds
    )
    for d, ((b, bn), (s, sn)) in bars.items():
        print(f"{d}: B = {b:.4f} ({bn}), S = {s:.4f} ({sn}), 2S = {2 * s:.4f}")
    print()
    print(
        "| candidate | passes | mean worst seed | mean of means | "
        "paired diff to default (mean ± SE) | replaces default? | "
        + " | ".join(f"{d} mean ± std" for d in args.datasets)
        + " |"
    )
    print("|---" * (5 + len(args.datasets)) + "|---|")
    for r in rows:
        cells = []
        for d in args.datasets:
            m, s = _stats(list(r["per"][d].values()))
            cells.append(f"{m:.4f} ± {s:.4f}")
        paired = (
            f"{r['paired_mean']:+.4f} ± {r['paired_se']:.4f}"
            if "paired_mean" in r
            else "n/a"
        )
        print(
            f"| `{r['overrides']}` | {len(r['passes'])} "
            f"({', '.join(r['passes']) or '-'}) | {r['mean_worst']:.4f} | "
            f"{r['mean_mean']:.4f} | {paired} | "
            f"{'yes' if r['replaces_default'] else 'no'} | "
            + " | ".join(cells)
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
