"""A ranking model for a user's table, multi-hot features included."""

from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.training.build import compile_model


def build_table_model(
    config,
    vocabulary_sizes,
    num_dense,
    multi_hot_vocabulary_sizes,
    combiner="mean",
    auc_metric=True,
):
    """A compiled `RankingModel` with a `MultiHotEmbedding`.

    Args:
        config: a `keras_adrec.models.presets.RankingPreset`.
        vocabulary_sizes: list of int, rows of each categorical table.
        num_dense: int, the number of dense features.
        multi_hot_vocabulary_sizes: list of int, rows of each multi-hot
            table.
        combiner: `"sum"`, `"mean"` or `"attention"`. Defaults to `"mean"`.
        auc_metric: bool. See `compile_model`. Defaults to `True`.

    Returns:
        The model, its weights built. Compiled without XLA: the bags'
        padded length changes from batch to batch.
    """
    model = RankingModel.from_preset(
        config,
        vocabulary_sizes=vocabulary_sizes,
        num_dense=num_dense,
        multi_hot_vocabulary_sizes=multi_hot_vocabulary_sizes,
        combiner=combiner,
    )
    model.build(
        {
            "dense": (None, int(num_dense)),
            "sparse": (None, len(vocabulary_sizes)),
            "multi_hot": (None, len(multi_hot_vocabulary_sizes), None),
        }
    )
    compile_model(model, config, auc_metric=auc_metric, jit_compile=False)
    return model
