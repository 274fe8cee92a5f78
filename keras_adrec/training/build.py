"""Build and compile a model from a preset: the one place that does it.

Every job (train, compare, tune, the benchmarks) gets its model here, so
the optimizer, loss and metrics are the same everywhere.
"""

import contextlib
import warnings

import keras

from keras_adrec.models.presets import as_preset
from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.models.sequential_ranking_model import SequentialRankingModel
from keras_adrec.training import distribution

# `--mixed-precision` choice -> Keras dtype policy.
MIXED_PRECISION_POLICIES = {
    "off": None,
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}


def make_optimizer(name, learning_rate, config=None):
    """A Keras optimizer from a name (`sgd`, `adagrad`, `adam`, ...).

    Args:
        name: a Keras optimizer name.
        learning_rate: float (or a schedule).
        config: optional dict of further constructor arguments, e.g.
            `{"initial_accumulator_value": 0.0, "epsilon": 1e-10}`.
    """
    settings = dict(config or {})
    settings["learning_rate"] = learning_rate
    try:
        return keras.optimizers.get({"class_name": name, "config": settings})
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Invalid optimizer {name!r} with config {config!r}: {error}"
        ) from None


def warmup_learning_rate(learning_rate, warmup_steps):
    """`learning_rate`, reached linearly from 0 over `warmup_steps` steps.

    Keras' `CosineDecay` with `alpha=1.0` (no decay after the warm-up):
    step `s < warmup_steps` uses `learning_rate * s / warmup_steps`, every
    later step `learning_rate`. A serializable schedule, so a saved model's
    optimizer keeps it.

    Args:
        learning_rate: float. The rate after the warm-up.
        warmup_steps: int. Steps of the linear ramp; `0` returns
            `learning_rate` unchanged.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    warmup_steps = int(warmup_steps)
    if warmup_steps < 0:
        raise ValueError(
            f"learning_rate_warmup_steps must be >= 0, got {warmup_steps}."
        )
    if warmup_steps == 0:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=1,
        alpha=1.0,
        warmup_target=float(learning_rate),
        warmup_steps=warmup_steps,
    )


def optimizer_for(config):
    """The optimizer a preset asks for: its `optimizer`, `learning_rate`,
    `optimizer_config` and `learning_rate_warmup_steps` (see
    `warmup_learning_rate`).

    Args:
        config: a `keras_adrec.models.presets.Preset`.

    Example:

    ```python
    optimizer_for(keras_adrec.models.get_preset("rm4"))
    # Adagrad(learning_rate=0.05, initial_accumulator_value=0.0,
    #         epsilon=1e-10): TBSM's torch Adagrad
    ```
    """
    return make_optimizer(
        config.optimizer,
        warmup_learning_rate(
            config.learning_rate, config.learning_rate_warmup_steps
        ),
        config.optimizer_config,
    )


def resolve_fields(
    preset,
    overrides=None,
    interaction=None,
    batch_size=None,
    epochs=None,
    scale_lr=False,
):
    """A preset with the caller's changes applied.

    Args:
        preset: a preset name or a `keras_adrec.models.presets.Preset`.
        overrides: dict of preset fields to replace.
        interaction: interaction name, replacing the preset's.
        batch_size: int, the GLOBAL batch size, replacing the preset's.
        epochs: int, replacing the preset's.
        scale_lr: bool. Take the learning rate as the rate for the
            preset's own batch size and scale it linearly to `batch_size`
            (`keras_adrec.training.scaled_learning_rate`).

    Returns:
        A `Preset`.
    """
    base = as_preset(preset)
    changes = dict(overrides or {})
    if interaction is not None:
        changes["interaction"] = str(interaction).lower()
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if epochs is not None:
        changes["epochs"] = epochs
    config = base.replace(**changes)
    if scale_lr:
        config = config.replace(
            learning_rate=distribution.scaled_learning_rate(
                config.learning_rate, config.batch_size, base.batch_size
            )
        )
    return config


# Median step milliseconds of RM1 training on CPU in graph mode and with XLA,
# and XLA's extra seconds in the first step (compilation), per (interaction,
# batch size): `benchmarks/results/training_throughput.json` (SYNTHETIC
# inputs, 2 cores, nothing else running). tests/training/test_build.py
# checks the table against that report: rerun the benchmark after changing
# a layer and copy its numbers here.
CPU_STEP_TIMES_PRESET = "rm1"
CPU_STEP_TIMES_INTERACTIONS = ("dot", "fm", "autoint", "dcnv2", "adrec")
CPU_STEP_TIMES = {
    # (interaction, batch): (graph ms, XLA ms, XLA extra first-step s)
    ("dot", 128): (7.23, 4.27, 0.54),
    ("dot", 1024): (25.07, 22.26, 0.58),
    ("fm", 128): (6.57, 4.96, 0.54),
    ("fm", 1024): (22.57, 22.56, 0.75),
    ("autoint", 128): (9.26, 6.14, 0.86),
    ("autoint", 1024): (30.26, 39.17, 1.00),
    ("dcnv2", 128): (7.33, 7.11, 0.72),
    ("dcnv2", 1024): (31.19, 31.53, 0.88),
    ("adrec", 128): (10.86, 9.74, 1.39),
    ("adrec", 1024): (50.03, 55.36, 1.50),
}


def fastest_jit_compile(interaction, batch_size, steps=None):
    """`jit_compile` for `model.compile`: graph or XLA, whichever is faster.

    On CPU, from the measured `CPU_STEP_TIMES` of `(interaction, batch
    size)`, a batch size between two measured ones taking the nearer (ties
    to the smaller): XLA when its step is faster and, for a run of `steps`
    training steps, when the time it saves over those steps exceeds its
    compilation (`steps * (graph ms - XLA ms) > extra first-step time`).
    An interaction that was not measured (or a layer instance) gets graph
    mode, Keras' CPU default. With a GPU visible it returns `"auto"`, and
    Keras picks XLA where it can.

    Args:
        interaction: interaction name (`"adrec"`) or layer.
        batch_size: int, the global batch size.
        steps: int or None. Training steps of the run; None compares the
            per-step times only (a long run).

    Returns:
        `True`, `False` or `"auto"`.

    Example:

    ```python
    keras_adrec.training.build.fastest_jit_compile("dot", 128)  # True
    keras_adrec.training.build.fastest_jit_compile("dot", 128, steps=100)
    # False: 100 steps save less than XLA's compilation costs.
    ```
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "auto"
    if not isinstance(interaction, str):
        return False
    measured = sorted(b for (i, b) in CPU_STEP_TIMES if i == interaction)
    if not measured:
        return False
    nearest = min(measured, key=lambda b: (abs(b - int(batch_size)), b))
    graph_ms, xla_ms, extra_seconds = CPU_STEP_TIMES[(interaction, nearest)]
    if xla_ms >= graph_ms:
        return False
    if steps is None:
        return True
    return int(steps) * (graph_ms - xla_ms) / 1e3 > extra_seconds


def compile_model(
    model,
    config,
    auc_metric=False,
    run_eagerly=False,
    jit_compile=None,
    steps=None,
):
    """Compile `model` with the preset's optimizer and the BCE loss.

    Args:
        model: a Keras model ending in a probability.
        config: a `keras_adrec.models.presets.Preset` (its optimizer and,
            with `jit_compile="fastest"`, its interaction and batch size).
        auc_metric: bool. Add Keras' streaming `AUC` metric (named `auc`)
            to the training logs.
        run_eagerly: bool. Keras' `run_eagerly` (for debugging).
        jit_compile: `None` (Keras' default: graph on CPU), `True`,
            `False`, `"auto"`, or `"fastest"`: `fastest_jit_compile` of the
            preset's interaction and batch size and `steps` (what `adrec
            train` and `adrec compare` use). For a preset other than RM1
            (the measured one), under a distribution strategy with more
            than one replica, or with a mixed-precision dtype policy,
            `"fastest"` keeps Keras' default (not measured).
        steps: int or None. Training steps of the run, for `"fastest"`.

    Returns:
        `model`, compiled.
    """
    metrics = [keras.metrics.AUC(name="auc")] if auc_metric else None
    if jit_compile == "fastest":
        import tensorflow as tf

        jit_compile = None
        # The table holds RM1's float32 steps on one device; keep Keras'
        # default elsewhere (other presets, mixed precision, several
        # replicas): not measured.
        if (
            config.name == CPU_STEP_TIMES_PRESET
            and tf.distribute.get_strategy().num_replicas_in_sync <= 1
            and keras.config.dtype_policy().name == "float32"
        ):
            jit_compile = fastest_jit_compile(
                config.interaction, config.batch_size, steps
            )
    if run_eagerly:
        jit_compile = None
    extra = {} if jit_compile is None else {"jit_compile": jit_compile}
    model.compile(
        optimizer=optimizer_for(config),
        loss="binary_crossentropy",
        metrics=metrics,
        run_eagerly=run_eagerly,
        **extra,
    )
    return model


def build_ranking_model(
    config,
    vocabulary_sizes,
    num_dense,
    compile=True,
    auc_metric=False,
    jit_compile=None,
    steps=None,
):
    """A `RankingModel` from a preset, built and (by default) compiled.

    Args:
        config: a `keras_adrec.models.presets.RankingPreset`
            (`keras_adrec.models.get_preset`).
        vocabulary_sizes: list of int, rows of each categorical table.
        num_dense: int, the number of dense features.
        compile: bool. Compile with `compile_model`. Defaults to `True`.
        auc_metric: bool. See `compile_model`.
        jit_compile: see `compile_model`; `"fastest"` picks graph or XLA
            per interaction, batch size and run length.
        steps: int or None. Training steps, for `jit_compile="fastest"`.

    Returns:
        The model, its weights built.

    Example:

    ```python
    config = keras_adrec.models.get_preset("rm1")
    model = keras_adrec.training.build_ranking_model(config, [100] * 26, 13)
    ```
    """
    model = RankingModel.from_preset(
        config, vocabulary_sizes=vocabulary_sizes, num_dense=num_dense
    )
    model.build(
        {
            "dense": (None, int(num_dense)),
            "sparse": (None, len(vocabulary_sizes)),
        }
    )
    if compile:
        compile_model(
            model,
            config,
            auc_metric=auc_metric,
            jit_compile=jit_compile,
            steps=steps,
        )
    return model


def build_sequential_model(
    config, vocabulary_sizes, compile=True, auc_metric=False
):
    """A `SequentialRankingModel` from a `SequentialPreset`, compiled by
    default."""
    model = SequentialRankingModel.from_preset(
        config, vocabulary_sizes=vocabulary_sizes
    )
    if compile:
        compile_model(model, config, auc_metric=auc_metric)
    return model


@contextlib.contextmanager
def dtype_policy(name):
    """Set the global Keras dtype policy to `name` (None: leave it).

    Args:
        name: a Keras dtype policy name (`"mixed_float16"`), a
            `MIXED_PRECISION_POLICIES` key (`"float16"`), or None.
    """
    name = MIXED_PRECISION_POLICIES.get(name, name)
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def streamed_epochs():
    """`model.fit` over a stream whose end is the end of training.

    Keras warns "Your input ran out of data" whenever a dataset of unknown
    length (a filtered text stream, a split decided row by row) ends,
    although that end is the planned end of the epoch. Inside this block
    that one warning is not shown; every other warning is.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Your input ran out of data", category=UserWarning
        )
        yield
