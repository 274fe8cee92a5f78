"""The optimizer a preset asks for (with and without the warm-up), and the
graph-or-XLA choice of `adrec train`."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_adrec.models import get_preset
from keras_adrec.training import build
from keras_adrec.training import optimizer_for
from keras_adrec.training.build import warmup_learning_rate


def _adagrad_reference(gradient, learning_rates, epsilon=1e-10):
    """Keras Adagrad in numpy: acc += g^2; w -= lr g / sqrt(acc + eps)."""
    weight = np.zeros_like(gradient, dtype="float64")
    accumulator = np.zeros_like(gradient, dtype="float64")
    trajectory = []
    for lr in learning_rates:
        accumulator += gradient.astype("float64") ** 2
        weight -= lr * gradient / np.sqrt(accumulator + epsilon)
        trajectory.append(weight.copy())
    return np.array(trajectory)


def test_warmup_ramps_linearly_then_holds():
    schedule = warmup_learning_rate(0.05, 4)
    rates = [float(schedule(step)) for step in range(7)]
    np.testing.assert_allclose(
        rates, [0.0, 0.0125, 0.025, 0.0375, 0.05, 0.05, 0.05], rtol=1e-6
    )
    assert warmup_learning_rate(0.05, 0) == 0.05
    with pytest.raises(ValueError, match="learning_rate_warmup_steps"):
        warmup_learning_rate(0.05, -1)


def test_sequential_optimizer_with_warmup_matches_numpy_adagrad():
    fields = get_preset("rm4", learning_rate_warmup_steps=4)
    optimizer = optimizer_for(fields)
    variable = keras.Variable(np.zeros(3, "float32"))
    gradient = np.array([1e-4, -1e-3, 2e-2], "float32")
    trajectory = []
    for _ in range(6):
        optimizer.apply_gradients(
            [(keras.ops.convert_to_tensor(gradient), variable)]
        )
        trajectory.append(variable.numpy().copy())
    expected = _adagrad_reference(
        gradient, [0.0, 0.0125, 0.025, 0.0375, 0.05, 0.05]
    )
    np.testing.assert_allclose(trajectory, expected, rtol=1e-4, atol=1e-9)
    # Without the warm-up the first step is a full-size sign step.
    plain = optimizer_for(get_preset("rm4", learning_rate_warmup_steps=0))
    first = keras.Variable(np.zeros(3, "float32"))
    plain.apply_gradients([(keras.ops.convert_to_tensor(gradient), first)])
    np.testing.assert_allclose(
        first.numpy(), -0.05 * np.sign(gradient), rtol=6e-3
    )


def test_warmup_survives_optimizer_serialization():
    optimizer = optimizer_for(get_preset("rm4", learning_rate_warmup_steps=7))
    restored = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)
    )
    config = restored.get_config()["learning_rate"]
    assert config["class_name"] == "CosineDecay"
    assert config["config"]["warmup_steps"] == 7
    assert config["config"]["warmup_target"] == pytest.approx(0.05)
    # The rate in effect before the first step (iterations = 0) is 0.
    assert float(restored.learning_rate) == 0.0


# ----------------------------------------------------------------------
# Graph or XLA (issue 15)

REPORT = (
    Path(__file__).resolve().parents[2]
    / "benchmarks"
    / "results"
    / "training_throughput.json"
)


def test_step_time_table_is_the_committed_benchmark_report():
    # The table `adrec train` chooses by must be the measured one: every
    # entry equals the report's median step (graph and XLA) and XLA's extra
    # first-step seconds, and every measured pair is in the table.
    report = json.loads(REPORT.read_text())
    # The float32 rows: mixed-precision rows are an option, not the
    # default `adrec train` chooses for.
    rows = {
        (r["interaction"], r["batch_size"], r["jit_compile"]): r
        for r in report["results"]
        if r.get("precision", "float32") == "float32"
    }
    measured = {
        (name, batch)
        for name, batch, _ in rows
        if name in build.CPU_STEP_TIMES_INTERACTIONS
    }
    assert measured == set(build.CPU_STEP_TIMES)
    for (name, batch), (
        graph_ms,
        xla_ms,
        extra,
    ) in build.CPU_STEP_TIMES.items():
        graph, xla = rows[(name, batch, False)], rows[(name, batch, True)]
        assert graph_ms == pytest.approx(graph["median_step_ms"], abs=0.006)
        assert xla_ms == pytest.approx(xla["median_step_ms"], abs=0.006)
        first_extra = xla["first_step_seconds"] - graph["first_step_seconds"]
        assert extra == pytest.approx(first_extra, abs=0.051)


def test_fastest_jit_compile_follows_the_table(monkeypatch):
    monkeypatch.setattr(
        build,
        "CPU_STEP_TIMES",
        {
            ("dot", 128): (10.0, 8.0, 2.0),
            ("dot", 1024): (50.0, 60.0, 2.0),
        },
    )
    assert build.fastest_jit_compile("dot", 128) is True
    # 2 ms saved per step pays for 2 s of compilation after 1,000 steps.
    assert build.fastest_jit_compile("dot", 128, steps=1000) is False
    assert build.fastest_jit_compile("dot", 128, steps=1001) is True
    assert build.fastest_jit_compile("dot", 1024) is False
    # Nearest measured batch size; ties go to the smaller one.
    assert build.fastest_jit_compile("dot", 300) is True
    assert build.fastest_jit_compile("dot", 576) is True
    assert build.fastest_jit_compile("dot", 700) is False
    # Not measured: Keras' CPU default, graph.
    assert build.fastest_jit_compile("fm", 128) is False
    assert build.fastest_jit_compile(keras.layers.Dense(1), 128) is False


def test_compile_model_applies_the_choice(monkeypatch):
    monkeypatch.setattr(
        build, "CPU_STEP_TIMES", {("dot", 128): (10.0, 8.0, 2.0)}
    )
    fields = get_preset("rm1", interaction="dot", batch_size=128)
    model = build.build_ranking_model(
        fields, [10] * 26, 13, jit_compile="fastest"
    )
    assert model.jit_compile is True
    model = build.build_ranking_model(
        fields, [10] * 26, 13, jit_compile="fastest", steps=10
    )
    assert model.jit_compile is False
    with build.dtype_policy("mixed_float16"):
        model = build.build_ranking_model(
            fields, [10] * 26, 13, jit_compile="fastest"
        )
    # Keras' own default on CPU (graph), not the float32 measurement.
    assert model.jit_compile is not True
    # The table measured RM1; another preset keeps the default too.
    other = get_preset("rm3", interaction="dot", batch_size=128)
    model = build.build_ranking_model(
        other, [10] * 22, 1, jit_compile="fastest"
    )
    assert model.jit_compile is not True
