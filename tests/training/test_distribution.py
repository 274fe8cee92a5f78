"""Training under tf.distribute strategies matches one device.

References: the single-device run of the same command (validation AUC
within seed noise, the same number of steps, `ceil(rows / global batch)`),
hand-computed learning-rate scaling, and `FeatureEmbedding`'s own lookup
for the parameter-server sharded table.
"""

import json
import math
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.cli import build_parser
from keras_adrec.training import distribution
from keras_adrec.training import resolve_fields
from keras_adrec.training.custom_loop import train_custom_loop
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.training_checkpoint import STATE_KEY
from tests import samples
from tests.test_case import run_python

TINY = {"bottom_units": [32], "top_units": [32]}
TINY_ARGS = ["--set", "bottom_units=[32]", "--set", "top_units=[32]"]
# 10,000 rows; the default time split trains on 8,000, validates on 2,000.
TRAIN_ROWS = 8000
BATCH = 128  # RM1's global batch.
# |AUC difference| allowed between strategies: seed noise of these runs.
AUC_TOLERANCE = 0.02


_MIRRORED = """
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from keras_adrec.jobs.train_ranking import TrainRankingSettings
from keras_adrec.jobs.train_ranking import train_ranking
from keras_adrec.models import get_preset

results = {}
for strategy in ("default", "mirrored"):
    results[strategy] = train_ranking(TrainRankingSettings(
        data="criteo:" + DATA, output=OUT + "/" + strategy,
        strategy=strategy, preset=get_preset("rm1", **TINY), verbose=False,
        checkpoint_dir=OUT + "/ckpt" if strategy == "mirrored" else None,
        checkpoint_every=20,
    ))
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def single_and_mirrored(criteo_file, tmp_path_factory):
    """Metrics of one run on one device and one on 2 logical CPUs."""
    out = tmp_path_factory.mktemp("mirrored")
    code = (
        f"DATA = {criteo_file!r}\nOUT = {str(out)!r}\nTINY = {TINY!r}\n"
        + _MIRRORED
    )
    results = json.loads(run_python(code).strip().splitlines()[-1])
    results["out"] = out
    return results


def _final_checkpoint_state(directory):
    latest = tf.train.latest_checkpoint(str(directory))
    reader = tf.train.load_checkpoint(latest)
    return json.loads(reader.get_tensor(STATE_KEY))


@pytest.mark.slow
def test_mirrored_matches_single_device(single_and_mirrored):
    single = single_and_mirrored["default"]
    mirrored = single_and_mirrored["mirrored"]
    assert single["num_replicas"] == 1
    assert mirrored["strategy"] == "mirrored"
    assert mirrored["num_replicas"] == 2
    # The batch is global: as many steps as on one device.
    assert single["steps"] == mirrored["steps"] == math.ceil(TRAIN_ROWS / BATCH)
    # Real rows: 0.6 (the authors' code reaches 0.67-0.69 on them); the
    # synthetic fallback of a clone without the samples reached 0.572.
    assert single["auc"] > samples.criteo_auc_bar(0.6)
    assert abs(mirrored["auc"] - single["auc"]) < AUC_TOLERANCE
    # Checkpoints of mirrored variables are written and readable.
    out = single_and_mirrored["out"]
    state = _final_checkpoint_state(out / "ckpt")
    assert state["step"] == mirrored["steps"] and state["finished"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_multiworker_matches_single_device(
    criteo_file, single_and_mirrored, tmp_path
):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        command = [
            sys.executable,
            "-m",
            "keras_adrec.cli",
            "train",
            "--data",
            f"criteo:{criteo_file}",
            "--strategy",
            "multiworker",
            "--output",
            str(tmp_path / f"out{index}"),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--checkpoint-every",
            "20",
            "--quiet",
            *TINY_ARGS,
        ]
        processes.append(
            subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    summaries = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        summaries.append(json.loads(stdout.strip().splitlines()[-1]))
    chief, other = summaries
    for summary in summaries:
        assert summary["strategy"] == "multiworker"
        assert summary["num_replicas"] == 2
        assert summary["steps"] == math.ceil(TRAIN_ROWS / BATCH)
    # Synchronous training: both workers end with the same weights.
    assert chief["auc"] == pytest.approx(other["auc"], abs=1e-9)
    single = single_and_mirrored["default"]
    assert abs(chief["auc"] - single["auc"]) < AUC_TOLERANCE
    # Only the chief (worker 0) writes the model directory.
    assert (tmp_path / "out0" / "model.keras").is_file()
    assert not (tmp_path / "out1").exists()
    # Every worker saved; only the chief's checkpoints remain.
    state = _final_checkpoint_state(tmp_path / "ckpt")
    assert state["step"] == chief["steps"] and state["finished"]
    names = [path.name for path in (tmp_path / "ckpt").iterdir()]
    assert not any(name.startswith(".") for name in names), names


def test_scale_lr_is_linear_in_global_batch():
    # RM1: learning rate 0.1 for its batch of 128.
    fields = resolve_fields("rm1", batch_size=4 * BATCH, scale_lr=True)
    assert fields.learning_rate == pytest.approx(0.4)
    assert fields.batch_size == 4 * BATCH
    kept = resolve_fields("rm1", batch_size=4 * BATCH)
    assert kept.learning_rate == 0.1
    # An overridden rate counts as the rate for the preset's batch.
    fields = resolve_fields(
        "rm1", {"learning_rate": 0.05}, batch_size=64, scale_lr=True
    )
    assert fields.learning_rate == pytest.approx(0.025)


def _logistic_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="bce")
    return model


@pytest.mark.slow
def test_custom_loop_takes_the_same_steps_as_fit():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(60, 5)).astype("float32")
    y = (x[:, :1] + 0.3 * rng.normal(size=(60, 1)) > 0).astype("float32")
    # 60 rows in batches of 8: the last batch has 4, averaged over 4.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    reference = _logistic_model(1)
    reference.fit(dataset, epochs=1, verbose=0, shuffle=False)
    model = _logistic_model(1)
    guard = NanGuard()
    steps = train_custom_loop(
        model, dataset, tf.distribute.get_strategy(), callbacks=[guard]
    )
    assert steps == 8 and guard.step == 8 and guard.stopped_step is None
    for actual, expected in zip(model.weights, reference.weights):
        np.testing.assert_allclose(actual, expected, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 8


def test_custom_loop_stops_on_nan():
    x = np.full((32, 5), np.nan, "float32")
    dataset = tf.data.Dataset.from_tensor_slices(
        (x, np.ones((32, 1), "float32"))
    ).batch(8)
    guard = NanGuard()
    steps = train_custom_loop(
        _logistic_model(0),
        dataset,
        tf.distribute.get_strategy(),
        callbacks=[guard],
    )
    assert steps == 1 and guard.stopped_step == 1


def test_scaled_learning_rate():
    assert distribution.scaled_learning_rate(0.1, 1024, 128) == 0.8
    assert distribution.scaled_learning_rate(0.2, 64, 128) == 0.1
    with pytest.raises(ValueError, match="positive"):
        distribution.scaled_learning_rate(0.1, 0, 128)


def test_make_strategy_default_and_errors(monkeypatch):
    strategy = distribution.make_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert distribution.strategy_name(strategy) == "default"
    assert distribution.is_chief(strategy)
    assert not distribution.uses_custom_loop(strategy)
    with pytest.raises(ValueError, match="Unknown strategy"):
        distribution.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable"):
        distribution.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="cluster.worker"):
        distribution.make_strategy("multiworker")


def test_train_help_documents_batch_and_learning_rate(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "is GLOBAL" in text and "batch_size/N" in text
    assert "--scale-lr" in text and "lr * batch_size / preset" in text
    assert "max_index_range" in text
    args = build_parser().parse_args(
        ["train", "--data", "x", "--output", "y", "--strategy", "mirrored"]
    )
    assert args.strategy == "mirrored" and args.scale_lr is False


_PARAMETER_SERVER = """
import json
import socket

import keras
import numpy as np
import tensorflow as tf

from keras_adrec.layers import FeatureEmbedding
from keras_adrec.models import RankingModel

sockets = [socket.socket() for _ in range(3)]
for sock in sockets:
    sock.bind(("127.0.0.1", 0))
ports = [sock.getsockname()[1] for sock in sockets]
for sock in sockets:
    sock.close()
cluster = tf.train.ClusterSpec({
    "worker": [f"127.0.0.1:{ports[0]}"],
    "ps": [f"127.0.0.1:{ports[1]}", f"127.0.0.1:{ports[2]}"],
})
servers = [
    tf.distribute.Server(cluster, job_name=job, task_index=index, start=True)
    for job, index in (("worker", 0), ("ps", 0), ("ps", 1))
]
strategy = tf.distribute.ParameterServerStrategy(
    tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster, rpc_layer="grpc"
    ),
    # Only variables of 4 KiB and more are split: the embedding table.
    variable_partitioner=(
        tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=4096, max_shards=2
        )
    ),
)
sizes = [1000, 3000]
with strategy.scope():
    model = RankingModel.from_preset(
        "rm1", vocabulary_sizes=sizes, num_dense=3, bottom_units=[8],
        top_units=[8], embedding_dim=8,
    )
    model.build({"dense": (None, 3), "sparse": (None, 2)})
    table = model.embedding_layer.embeddings
    others = [v for v in model.trainable_variables if v is not table]
    optimizer = keras.optimizers.SGD(0.5)
    optimizer.build(others)
sharded = table.value
shards = list(sharded.variables)
result = {
    "kind": type(sharded).__name__,
    "devices": sorted(s.device for s in shards),
    "rows": [int(s.shape[0]) for s in shards],
}
ids = tf.constant([[5, 2999], [999, 0], [0, 1500]])
offsets = tf.constant(model.embedding_layer.offsets)
looked_up = tf.nn.embedding_lookup(sharded, ids + offsets)
result["lookup_error"] = float(
    np.max(np.abs(looked_up - model.embedding_layer(ids)))
)
try:
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model.embedding_layer(ids))
    tape.gradient(loss, [table])
    result["keras_gradient"] = "ok"
except AttributeError as error:
    result["keras_gradient"] = str(error)

coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)


def dataset_fn():
    rng = np.random.RandomState(0)
    sparse = np.stack(
        [rng.randint(0, 1000, 512), rng.randint(0, 3000, 512)], 1
    ).astype("int32")
    features = {"dense": rng.rand(512, 3).astype("float32"), "sparse": sparse}
    labels = (sparse[:, :1] % 2).astype("float32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).repeat(
    ).batch(64)


iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))


@tf.function
def train_step(iterator):
    def step(batch):
        features, labels = batch
        with tf.GradientTape() as tape:
            probabilities = model(features, training=True)
            loss = tf.reduce_mean(
                keras.losses.binary_crossentropy(labels, probabilities)
            )
        gradients = tape.gradient(loss, shards + others)
        for shard, gradient in zip(shards, gradients[: len(shards)]):
            shard.assign_sub(0.5 * tf.convert_to_tensor(gradient))
        optimizer.apply_gradients(zip(gradients[len(shards):], others))
        return loss

    return strategy.run(step, args=(next(iterator),))


before = [s.numpy() for s in shards]
losses = [coordinator.schedule(train_step, args=(iterator,))
          for _ in range(40)]
coordinator.join()
losses = [float(loss.fetch()) for loss in losses]
result["first_loss"] = float(np.mean(losses[:5]))
result["last_loss"] = float(np.mean(losses[-5:]))
result["changed_rows"] = [
    int((np.abs(s.numpy() - b).sum(axis=1) > 0).sum())
    for s, b in zip(shards, before)
]
print(json.dumps(result))
"""


@pytest.mark.slow
def test_parameter_server_shards_embedding_rows():
    result = json.loads(run_python(_PARAMETER_SERVER).strip().splitlines()[-1])
    assert result["kind"] == "ShardedVariable"
    assert result["devices"] == [
        "/job:ps/replica:0/task:0/device:CPU:0",
        "/job:ps/replica:0/task:1/device:CPU:0",
    ]
    assert sum(result["rows"]) == 4000 and min(result["rows"]) > 0
    assert result["lookup_error"] == 0.0
    # The documented Keras 3 limit: no gradient w.r.t. a sharded Keras
    # variable (distribution.py). If this starts passing, update the docs.
    assert (
        "'ShardedVariable' object has no attribute 'handle'"
        in (result["keras_gradient"])
    )
    assert all(rows > 0 for rows in result["changed_rows"])
    assert result["last_loss"] < result["first_loss"]


def test_local_devices_lists_cpus_without_gpus():
    devices = distribution.local_devices()
    if not tf.config.list_logical_devices("GPU"):
        assert devices and all("CPU" in name for name in devices)
