"""`--mixed-precision float16 / bfloat16` trains with finite numbers.

Reference: the same trained weights run in a float32 copy of the model; the
mixed-precision predictions must agree with it to the precision of the
16-bit format
(mean error within twice the format's machine epsilon).
"""

import csv
import math

import keras
import numpy as np
import pytest

from keras_adrec import data as adrec_data
from keras_adrec.jobs.train_ranking import TrainRankingSettings
from keras_adrec.jobs.train_ranking import train_ranking
from keras_adrec.models import RankingModel
from keras_adrec.models import get_preset
from keras_adrec.training import ModelDirectory

TINY = {"bottom_units": [32], "top_units": [32]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "choice, policy, compute_dtype, epsilon",
    [
        ("float16", "mixed_float16", "float16", 2.0**-10),
        ("bfloat16", "mixed_bfloat16", "bfloat16", 2.0**-7),
    ],
)
def test_mixed_precision_training_stays_finite(
    criteo_file, tmp_path, choice, policy, compute_dtype, epsilon
):
    before = keras.config.dtype_policy().name
    # The first 1,000 rows: 500 train (4 steps of 128), 500 validate. (16-bit
    # arithmetic is emulated on CPUs, so every row evaluated costs.)
    head = tmp_path / "head.txt"
    with open(criteo_file) as source:
        head.write_text("".join(next(source) for _ in range(1000)))
    out = tmp_path / "run"
    summary = train_ranking(
        TrainRankingSettings(
            data=f"criteo:{head}",
            output=out,
            preset=get_preset("rm1", **TINY),
            verbose=False,
            val_fraction=0.5,
            eval_every=2,
            mixed_precision=choice,
        )
    )
    assert keras.config.dtype_policy().name == before == "float32"
    assert summary["mixed_precision"] == choice and summary["steps"] == 4
    assert math.isfinite(summary["logloss"]) and 0.0 <= summary["auc"] <= 1
    with open(out / "curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [2, 4]
    assert all(math.isfinite(float(row["train_loss"])) for row in rows)

    model, preprocessor, config = ModelDirectory(out).load_ranking()
    assert model.dtype_policy.name == policy
    assert model.embedding_layer.compute_dtype == compute_dtype
    # float16 needs loss scaling; compile() adds it, bfloat16 does not.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (choice == "float16")

    raw = adrec_data.make_dataset("criteo", [str(head)], 256)
    features, _ = next(iter(adrec_data.preprocess(raw, preprocessor)))
    mixed = model.predict_on_batch(features)
    reference = RankingModel.from_preset(
        config["preset"],
        vocabulary_sizes=preprocessor.vocabulary_sizes,
        num_dense=adrec_data.schema_for("criteo").num_dense,
    )
    reference.build({k: v.shape for k, v in features.items()})
    assert reference.dtype_policy.name == "float32"
    reference.set_weights(model.get_weights())
    expected = reference.predict_on_batch(features)
    assert mixed.dtype == np.float32 and np.all(np.isfinite(mixed))
    error = np.abs(mixed - expected)
    # On average within twice the format's epsilon; single rows may differ
    # more where an attention probability sits at an Ad-Rec mask threshold
    # and the keep/drop decision flips.
    assert np.mean(error) < 2 * epsilon
    assert np.max(error) < 0.1
    assert np.std(expected) > 1e-3  # not a constant output


def test_unknown_mixed_precision_is_refused(tmp_path, criteo_file):
    with pytest.raises(ValueError, match="`mixed_precision` must be one of"):
        TrainRankingSettings(
            data=f"criteo:{criteo_file}",
            output=tmp_path,
            mixed_precision="float8",
        )
