"""What `adrec compare` compares: the interactions and Ad-Rec's ablations
(paper appendix D), each a change of the preset."""

from keras_adrec.models.presets import as_preset

# name -> (interaction, preset overrides, what it is)
VARIANTS = {
    "dot": ("dot", {}, "DLRM pairwise dot products"),
    "fm": ("fm", {}, "DeepFM factorization machine"),
    "autoint": ("autoint", {}, "AutoInt self-attention"),
    "dcnv2": ("dcnv2", {}, "DCN-v2 cross network"),
    "adrec": (
        "adrec",
        {},
        "Ad-Rec, per-head masks (the preset's rule and warm-up)",
    ),
    "adrec-nomask": (
        "adrec",
        {"mask_thresholds": None},
        "Ad-Rec without mask (Table 4)",
    ),
    "adrec-fixed": (
        "adrec",
        {"mask_thresholds": "fixed"},
        "Ad-Rec, one threshold 0.01 for all heads (Table 4)",
    ),
    "adrec-noln": (
        "adrec",
        {"use_layer_norm": False},
        "Ad-Rec without LayerNorm (Table 3)",
    ),
    "adrec-postln": (
        "adrec",
        {"norm_first": False},
        "Ad-Rec, post-LN as the released code",
    ),
    "adrec-pos": (
        "adrec",
        {"positional_embedding": True},
        "Ad-Rec with positional embedding (D.1)",
    ),
}
BASE_VARIANTS = ("dot", "fm", "autoint", "dcnv2", "adrec")
ABLATIONS = (
    "adrec-nomask",
    "adrec-fixed",
    "adrec-noln",
    "adrec-postln",
    "adrec-pos",
)
FIXED_THRESHOLD = 0.01


def variant_fields(variant, preset="rm1", overrides=None, batch_size=None):
    """The preset of one `VARIANTS` entry (interaction and changes).

    Args:
        variant: a key of `VARIANTS`.
        preset: a preset name or a `RankingPreset`.
        overrides: dict of preset fields to replace first.
        batch_size: int or None, replacing the preset's.

    Returns:
        A `RankingPreset`.
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown variant {variant!r}. Choose from {', '.join(VARIANTS)}."
        )
    interaction, changes, _ = VARIANTS[variant]
    config = as_preset(preset, **(overrides or {}))
    changes = dict(changes, interaction=interaction)
    if changes.get("mask_thresholds") == "fixed":
        changes["mask_thresholds"] = (FIXED_THRESHOLD,) * config.num_heads
    if batch_size:
        changes["batch_size"] = batch_size
    return config.replace(**changes)
