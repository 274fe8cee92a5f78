"""What `adrec compare` writes: the table, the convergence plot and the
attention maps. Plots draw on bare matplotlib `Figure`s (no pyplot: no
global backend switch, no display needed)."""

import numpy as np

from keras_adrec.utils.statistics import STD_LABEL
from keras_adrec.utils.statistics import mean_std


def aggregate(variant, description, runs):
    """One table row: mean ± sample std (ddof=1) over a variant's seeds."""
    auc, auc_std = mean_std([r["auc"] for r in runs])
    loss, loss_std = mean_std([r["logloss"] for r in runs])
    reached = [r for r in runs if r["steps_to_target"] is not None]
    steps, steps_std = mean_std([r["steps_to_target"] for r in reached])
    seconds, seconds_std = mean_std([r["seconds_to_target"] for r in reached])
    speed, _ = mean_std([r["samples_per_sec"] for r in runs])
    return {
        "variant": variant,
        "description": description,
        "seeds": len(runs),
        "auc_mean": auc,
        "auc_std": auc_std,
        "logloss_mean": loss,
        "logloss_std": loss_std,
        "reached_target": len(reached),
        "steps_to_target": steps,
        "steps_to_target_std": steps_std,
        "seconds_to_target": seconds,
        "seconds_to_target_std": seconds_std,
        "samples_per_sec": speed,
        "steps": runs[0]["steps"],
    }


def _fmt(value, pattern):
    return "–" if value is None else pattern.format(value)


def markdown_table(rows, target_auc, source):
    label = "SYNTHETIC data" if source["synthetic"] else "data"
    lines = [
        f"Validation on {label} ({source['split']}). Cells: {STD_LABEL} "
        "over seeds; steps and seconds to target over the seeds that "
        "reached it.",
        "",
        "| interaction | val AUC | val logloss | steps to target | "
        "train s to target | train samples/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        target = (
            "–"
            if target_auc is None
            else (
                f"{row['steps_to_target']:.0f} ({row['reached_target']}/"
                f"{row['seeds']} seeds)"
                if row["steps_to_target"] is not None
                else f"not reached (0/{row['seeds']})"
            )
        )
        lines.append(
            f"| {row['variant']} | "
            f"{_fmt(row['auc_mean'], '{:.4f}')} ± "
            f"{_fmt(row['auc_std'], '{:.4f}')} | "
            f"{_fmt(row['logloss_mean'], '{:.4f}')} ± "
            f"{_fmt(row['logloss_std'], '{:.4f}')} | {target} | "
            f"{_fmt(row['seconds_to_target'], '{:.1f}')} | "
            f"{_fmt(row['samples_per_sec'], '{:,.0f}')} |"
        )
    return "\n".join(lines)


def plot_convergence(runs_by_variant, path, title):
    # A bare Figure (no pyplot): no global backend switch, no GUI needed.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.subplots()
    for variant, runs in runs_by_variant.items():
        steps = [p["step"] for p in runs[0]["curve"]]
        length = min(len(r["curve"]) for r in runs)
        aucs = np.array(
            [[p["val_auc"] for p in r["curve"][:length]] for r in runs]
        )
        mean = aucs.mean(axis=0)
        ax.plot(steps[:length], mean, marker="o", markersize=3, label=variant)
        if len(runs) > 1:
            std = aucs.std(axis=0, ddof=1)
            ax.fill_between(steps[:length], mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation AUC")
    ax.set_title(title + " (band: ± sample std)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
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
