"""KerasTuner HyperModel of the sequential Ad-Rec model (RM4-RM7)."""

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.models.sequential_presets import SequentialPreset
from keras_adrec.models.sequential_ranking_model import SequentialRankingModel
from keras_adrec.tuning._base_hypermodel import BaseAdRecHyperModel


@keras_adrec_export
class SequentialHyperModel(BaseAdRecHyperModel):
    """Search the Ad-Rec interaction of a `SequentialRankingModel` preset.

    The same search space as `tuning.RankingHyperModel`
    (`tuning.AdRecSearchSpace`: `num_layers`, `num_heads`, `ffn_dim`,
    `dropout`, `mask_thresholds`, `activation`, `norm_first`,
    `learning_rate`, defaulting to the preset's values) applied to the
    per-event Ad-Rec interaction of a TBSM-style model; the sequential
    layer keeps its preset settings (change them with `overrides`).

    Args:
        preset: a preset name (`"rm4"` to `"rm7"`), a `SequentialPreset`
            or its serialized dict. Defaults to `"rm4"`.
        vocabulary_sizes: list of int, rows of each categorical table of an
            event (Taobao: user, item, category).
        interaction: interaction name. Defaults to `"adrec"`.
        sequence_layer: sequential-layer name; defaults to the preset's.
        overrides: dict of preset fields to replace before searching.
        fixed: dict `name -> value` of hyperparameters to pin.
        ranges: dict `name -> (lo, hi)` or `name -> [choices]`.
        seed: int. Seed of the weights and dropout of every trial.
            Defaults to `0`.
        patience: int. Epochs without a better validation AUC before a
            trial stops early. Defaults to `2`.
        run_eagerly: bool. Train without compiling a graph (tiny runs).
            Defaults to `False`.
        name: optional name of the hypermodel.
        tunable: bool, KerasTuner's flag. Defaults to `True`.

    Example:

    ```python
    hypermodel = tuning.SequentialHyperModel(
        "rm4", vocabulary_sizes=[users, items, categories],
        ranges={"num_heads": [1, 2, 4]})
    tuner = tuning.search.make_tuner("random", hypermodel, "search")
    tuner.search(train_x, train_y, validation_data=(val_x, val_y))
    ```

    References:
        Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2
        and D.6.
    """

    def __init__(
        self,
        preset="rm4",
        vocabulary_sizes=None,
        interaction="adrec",
        sequence_layer=None,
        overrides=None,
        fixed=None,
        ranges=None,
        seed=0,
        patience=2,
        run_eagerly=False,
        name=None,
        tunable=True,
    ):
        if not vocabulary_sizes:
            raise ValueError(
                "`vocabulary_sizes` must list the rows of each categorical "
                f"table. Received: vocabulary_sizes={vocabulary_sizes}"
            )
        super().__init__(
            preset,
            interaction=interaction,
            overrides=overrides,
            fixed=fixed,
            ranges=ranges,
            seed=seed,
            patience=patience,
            run_eagerly=run_eagerly,
            name=name,
            tunable=tunable,
        )
        if not isinstance(self.search_space.fields, SequentialPreset):
            raise ValueError(
                f"Preset {preset!r} is not a sequential preset; use rm4, "
                "rm5, rm6 or rm7 (or `tuning.RankingHyperModel`)."
            )
        self.vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        self.sequence_layer = sequence_layer

    def make_model(self, fields):
        return SequentialRankingModel.from_preset(
            fields,
            vocabulary_sizes=self.vocabulary_sizes,
            sequence_layer=self.sequence_layer,
        )

    def get_config(self):
        config = super().get_config()
        config["vocabulary_sizes"] = list(self.vocabulary_sizes)
        config["sequence_layer"] = self.sequence_layer
        return config
