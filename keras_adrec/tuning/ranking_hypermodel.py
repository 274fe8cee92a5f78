"""KerasTuner HyperModel of the Ad-Rec ranking model (RM1-RM3)."""

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.tuning._base_hypermodel import BaseAdRecHyperModel


@keras_adrec_export
class RankingHyperModel(BaseAdRecHyperModel):
    """Search the Ad-Rec interaction of a `RankingModel` preset.

    `build(hp)` declares `tuning.AdRecSearchSpace`'s hyperparameters
    (`num_layers`, `num_heads`, `ffn_dim`, `dropout`, `mask_thresholds`,
    `activation`, `norm_first`, `learning_rate`, defaulting to the preset's
    values) and returns a compiled `keras_adrec.models.RankingModel` built
    with them. `fit` trains it with the exact validation AUC in the logs
    (the objective `keras_tuner.Objective("val_auc", "max")`) and early
    stopping on it; it needs `validation_data`.

    Every trial starts from the same seed, so trials differ only by their
    hyperparameters.

    Args:
        preset: a preset name (`"rm1"`, `"rm2"`, `"rm3"`), a
            `RankingPreset` or its serialized dict. Defaults to `"rm1"`.
        vocabulary_sizes: list of int, rows of each categorical table (the
            fitted `FeaturePreprocessor.vocabulary_sizes`).
        num_dense: int, number of dense features.
        interaction: interaction name. Defaults to `"adrec"` (the search
            space sets the Ad-Rec interaction's arguments).
        overrides: dict of preset fields to replace before searching, such
            as `{"bottom_units": [64], "batch_size": 256}`; replaced fields
            that are hyperparameters change their defaults.
        fixed: dict `name -> value` of hyperparameters to pin.
        ranges: dict `name -> (lo, hi)` or `name -> [choices]` narrowing
            hyperparameters (see `tuning.AdRecSearchSpace`).
        seed: int. Seed of the weights and dropout of every trial.
            Defaults to `0`.
        patience: int. Epochs without a better validation AUC before a
            trial stops early. Defaults to `2`.
        run_eagerly: bool. Train without compiling a graph: slower steps
            but no tracing, which only pays off for tiny runs (tests).
            Defaults to `False`.
        name: optional name of the hypermodel.
        tunable: bool, KerasTuner's flag. Defaults to `True`.

    Example:

    ```python
    hypermodel = tuning.RankingHyperModel(
        "rm1", vocabulary_sizes=sizes, num_dense=13,
        fixed={"num_heads": 2}, ranges={"dropout": (0.01, 0.1)})
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective=keras_tuner.Objective("val_auc", "max"),
        max_trials=10, seed=1, directory="search")
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1)
    ```

    References:
        Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix D.4
        and D.6.
    """

    def __init__(
        self,
        preset="rm1",
        vocabulary_sizes=None,
        num_dense=None,
        interaction="adrec",
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
        if num_dense is None or int(num_dense) < 1:
            raise ValueError(
                f"`num_dense` must be positive. Received: num_dense={num_dense}"
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
        self.vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        self.num_dense = int(num_dense)

    def make_model(self, fields):
        return RankingModel.from_preset(
            fields,
            vocabulary_sizes=self.vocabulary_sizes,
            num_dense=self.num_dense,
        )

    def get_config(self):
        config = super().get_config()
        config["vocabulary_sizes"] = list(self.vocabulary_sizes)
        config["num_dense"] = self.num_dense
        return config
