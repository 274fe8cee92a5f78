"""What `adrec compare` writes: the table, the headline, the convergence
and shift plots, the attention maps and the mask diagnostics. Plots draw
on bare matplotlib `Figure`s (no pyplot: no global backend switch, no
display needed)."""

import math

import keras
import numpy as np

from keras_adrec.models.head_diagnostics import as_json
from keras_adrec.models.head_diagnostics import format_mask_diagnostics
from keras_adrec.models.head_diagnostics import mask_diagnostics
from keras_adrec.training.build import build_ranking_model
from keras_adrec.utils.statistics import STD_LABEL
from keras_adrec.utils.statistics import mean_std

# The interaction whose claim the comparison tests.
ADREC = "adrec"


def aggregate(variant, description, runs):
    """One table row: mean and sample std (ddof=1) over a variant's seeds.

    Steps and seconds to target are over the seeds that reached it; AUC
    and logloss over the seeds that did not diverge (non-finite validation
    predictions), which are counted in `diverged`.
    """
    diverged = [r for r in runs if not _finite(r.get("logloss"))]
    kept = [r for r in runs if _finite(r.get("logloss"))]
    auc, auc_std = mean_std([r["auc"] for r in kept])
    # Every run counts; a non-finite AUC (a diverged run) is the worst.
    worst = min(
        runs,
        key=lambda r: r["auc"] if _finite(r["auc"]) else float("-inf"),
        default=None,
    )
    loss, loss_std = mean_std([r["logloss"] for r in kept])
    holdout, holdout_std = mean_std([r.get("holdout_auc") for r in runs])
    gaps = [r["holdout_auc"] - r["auc"] for r in runs if "holdout_auc" in r]
    gap, gap_std = mean_std(gaps)
    reached = [r for r in runs if r.get("steps_to_target") is not None]
    steps, steps_std = mean_std([r["steps_to_target"] for r in reached])
    seconds, seconds_std = mean_std([r["seconds_to_target"] for r in reached])
    speed, _ = mean_std([r["samples_per_sec"] for r in runs])
    return {
        "variant": variant,
        "description": description,
        "seeds": len(runs),
        "diverged": len(diverged),
        "auc_mean": auc,
        "auc_std": auc_std,
        "auc_worst": None if worst is None else worst["auc"],
        "auc_worst_seed": None if worst is None else worst.get("seed"),
        "logloss_mean": loss,
        "logloss_std": loss_std,
        "holdout_auc_mean": holdout,
        "holdout_auc_std": holdout_std,
        "shift_gap_mean": gap,
        "shift_gap_std": gap_std,
        "reached_target": len(reached),
        "steps_to_target": steps,
        "steps_to_target_std": steps_std,
        "seconds_to_target": seconds,
        "seconds_to_target_std": seconds_std,
        "samples_per_sec": speed,
        "steps": runs[0]["steps"],
    }


def _finite(value):
    return value is not None and math.isfinite(value)


def headline(rows, target, automatic):
    """One paragraph: the target and Ad-Rec's steps against the best
    baseline's (the paper's Figure 2 measure) and seconds (Figure 3)."""
    how = (
        "chosen automatically: 95% of the best final lift over chance, "
        "0.5 + 0.95 x (best mean final val AUC - 0.5)"
        if automatic
        else "given with --target-auc"
    )
    text = f"Target validation AUC {target:.4f} ({how})."
    complete = {
        r["variant"]: r for r in rows if r["reached_target"] == r["seeds"]
    }
    adrec = complete.get(ADREC)
    baselines = [r for v, r in complete.items() if not v.startswith(ADREC)]
    if ADREC not in {r["variant"] for r in rows}:
        return text
    if adrec is None:
        reached = next(r for r in rows if r["variant"] == ADREC)
        return (
            f"{text} Ad-Rec did not reach it in every seed "
            f"({reached['reached_target']}/{reached['seeds']})."
        )
    if not baselines:
        return f"{text} Ad-Rec reached it; no baseline did in every seed."
    best = min(baselines, key=lambda r: r["steps_to_target"])
    fastest = min(baselines, key=lambda r: r["seconds_to_target"])
    return (
        f"{text} Ad-Rec reached it in {adrec['steps_to_target']:.0f} steps, "
        f"{adrec['steps_to_target'] / best['steps_to_target']:.2f}x the "
        f"steps of the best baseline ({best['variant']}, "
        f"{best['steps_to_target']:.0f}), and in "
        f"{adrec['seconds_to_target']:.1f} training seconds, "
        f"{adrec['seconds_to_target'] / fastest['seconds_to_target']:.2f}x "
        f"the fastest baseline's ({fastest['variant']}, "
        f"{fastest['seconds_to_target']:.1f} s)."
    )


def _fmt(value, pattern):
    return "–" if value is None else pattern.format(value)


def _pm(mean, std, pattern="{:.4f}"):
    if mean is None:
        return "–"
    if std is None:
        return pattern.format(mean)
    return f"{pattern.format(mean)} ± {pattern.format(std)}"


def _worst(row):
    if row.get("auc_worst") is None:
        return "–"
    seed = row.get("auc_worst_seed")
    suffix = "" if seed is None else f" (seed {seed})"
    return f"{row['auc_worst']:.4f}{suffix}"


def markdown_table(rows, source, with_holdout):
    label = "SYNTHETIC data" if source["synthetic"] else "data"
    header = [
        "interaction",
        "steps to target",
        "train s to target",
        "val AUC (shifted)" if with_holdout else "val AUC",
        "worst seed",
    ]
    if with_holdout:
        header += ["AUC, training distribution", "shift gap"]
    header += ["val logloss", "train samples/s"]
    lines = [
        f"Validation on {label} ({source['split']}"
        + (
            f"; training distribution: {source['holdout']}"
            if with_holdout
            else ""
        )
        + f"). Cells: {STD_LABEL} over seeds; steps and seconds to target "
        "over the seeds that reached it. Worst seed: the lowest "
        "validation AUC of one seed, and that seed. Shift gap: AUC on the "
        "training distribution minus AUC on the shifted day.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        if row["reached_target"] == 0:
            steps = seconds = f"not reached (0/{row['seeds']})"
        else:
            reached = (
                ""
                if row["reached_target"] == row["seeds"]
                else f" ({row['reached_target']}/{row['seeds']} seeds)"
            )
            steps = (
                _pm(
                    row["steps_to_target"], row["steps_to_target_std"], "{:.0f}"
                )
                + reached
            )
            seconds = _pm(
                row["seconds_to_target"], row["seconds_to_target_std"], "{:.1f}"
            )
        name = row["variant"]
        if row.get("diverged"):
            name += f" ({row['diverged']}/{row['seeds']} seeds diverged)"
        cells = [
            name,
            steps,
            seconds,
            _pm(row["auc_mean"], row["auc_std"]),
            _worst(row),
        ]
        if with_holdout:
            cells += [
                _pm(row["holdout_auc_mean"], row["holdout_auc_std"]),
                _pm(row["shift_gap_mean"], row["shift_gap_std"]),
            ]
        cells += [
            _pm(row["logloss_mean"], row["logloss_std"]),
            _fmt(row["samples_per_sec"], "{:,.0f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_convergence(runs_by_variant, path, title, target=None):
    """Validation AUC against steps and against training seconds.

    Lines are means over seeds; bands ± sample std (ddof=1).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), dpi=100)
    by_step, by_time = fig.subplots(1, 2, sharey=True)
    for variant, runs in runs_by_variant.items():
        length = min(len(r["curve"]) for r in runs)
        steps = [p["step"] for p in runs[0]["curve"][:length]]
        aucs = np.array(
            [[p["val_auc"] for p in r["curve"][:length]] for r in runs]
        )
        seconds = np.array(
            [[p["train_seconds"] for p in r["curve"][:length]] for r in runs]
        ).mean(axis=0)
        mean = aucs.mean(axis=0)
        for ax, x in ((by_step, steps), (by_time, seconds)):
            (line,) = ax.plot(x, mean, marker="o", markersize=3, label=variant)
            if len(runs) > 1:
                std = aucs.std(axis=0, ddof=1)
                ax.fill_between(
                    x,
                    mean - std,
                    mean + std,
                    alpha=0.15,
                    color=line.get_color(),
                )
    for ax, label in (
        (by_step, "training step"),
        (by_time, "training seconds (mean over seeds)"),
    ):
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    by_step.set_ylabel("validation AUC")
    if target is not None:
        by_step.text(
            0.99,
            target,
            f" target {target:.4f}",
            color="grey",
            fontsize=8,
            ha="right",
            va="bottom",
            transform=by_step.get_yaxis_transform(),
        )
    by_time.legend(fontsize=8, loc="lower right")
    fig.suptitle(title + " (band: ± sample std over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def plot_shift(rows, path, title):
    """Per interaction: AUC on the training distribution and on the
    shifted day, with ± sample std error bars and the gap written above."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    x = np.arange(len(rows))
    width = 0.38
    same = [r["holdout_auc_mean"] for r in rows]
    shifted = [r["auc_mean"] for r in rows]
    ax.bar(
        x - width / 2,
        same,
        width,
        yerr=[r["holdout_auc_std"] or 0 for r in rows],
        label="training distribution (held-out rows)",
        capsize=3,
    )
    ax.bar(
        x + width / 2,
        shifted,
        width,
        yerr=[r["auc_std"] or 0 for r in rows],
        label="shifted validation day",
        capsize=3,
    )
    for i, row in enumerate(rows):
        ax.text(
            i,
            max(same[i], shifted[i]) + 0.004,
            f"gap {row['shift_gap_mean']:.3f}",
            ha="center",
            fontsize=8,
        )
    low = min(min(same), min(shifted))
    high = max(max(same), max(shifted))
    ax.set_ylim(max(0.0, low - 0.03), min(1.0, high + 0.05))
    ax.set_xticks(x, [r["variant"] for r in rows])
    ax.set_ylabel("AUC (mean over seeds)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)


def plot_attention_maps(model, features, feature_names, path, title):
    """Per head: first-pass and masked probabilities, averaged over samples.

    The maps of the first Ad-Rec block, for the given validation samples.
    """
    import keras
    from matplotlib.figure import Figure

    tokens, _ = model.interaction_tokens(features, training=False)
    maps = model.interaction.attention_maps(tokens)[0]
    unmasked = keras.ops.convert_to_numpy(maps["unmasked"]).mean(axis=0)
    masked = keras.ops.convert_to_numpy(maps["masked"]).mean(axis=0)
    thresholds = model.interaction.blocks[0].mask_thresholds
    heads = unmasked.shape[0]
    fig = Figure(figsize=(11, 5.2 * heads), dpi=80)
    axes = fig.subplots(heads, 2, squeeze=False)
    ticks = np.arange(len(feature_names))
    for h in range(heads):
        theta = "no mask" if thresholds is None else f"θ={thresholds[h]:g}"
        for col, (name, values) in enumerate(
            (("first pass", unmasked[h]), (f"masked ({theta})", masked[h]))
        ):
            ax = axes[h][col]
            image = ax.imshow(values, cmap="viridis", vmin=0.0)
            ax.set_title(f"head {h}: {name}", fontsize=9)
            ax.set_xticks(ticks, feature_names, rotation=90, fontsize=6)
            ax.set_yticks(ticks, feature_names, fontsize=6)
            ax.set_xlabel("key feature", fontsize=8)
            ax.set_ylabel("query feature", fontsize=8)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    kept = float((masked > 0).mean())
    return {"kept_fraction_of_mean_map": kept}


def head_diagnostics(loaded, trained, fields, rows=1024):
    """Per-head kept keys, single-key rows and query/key gradient norms of
    the Ad-Rec interaction, at initialisation (seed 0) and after training,
    on the first `rows` validation rows."""
    features = {k: v[:rows] for k, v in loaded.val[0].items()}
    labels = loaded.val[1][:rows]
    keras.utils.set_random_seed(0)
    initial = build_ranking_model(
        fields, loaded.vocabulary_sizes, loaded.num_dense
    )
    reports = {
        "at initialisation": mask_diagnostics(initial, features, labels),
        "after training (seed 0)": mask_diagnostics(trained, features, labels),
    }
    markdown = [
        f"## Mask diagnostics ({fields.mask_rule} rule, first {rows:,} "
        "validation rows)",
        "",
    ]
    for title, report in reports.items():
        markdown += format_mask_diagnostics(report, title=title) + [""]
    return {
        "markdown": markdown,
        "json": {title: as_json(r) for title, r in reports.items()},
    }
