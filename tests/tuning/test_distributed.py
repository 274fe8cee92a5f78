"""Distributed search: a chief oracle and 2 workers on 127.0.0.1."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

JOB = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import numpy as np

    from keras_adrec.tuning import RankingHyperModel
    from keras_adrec.tuning import search

    class Count(keras.callbacks.Callback):
        runs = 0

        def on_train_begin(self, logs=None):
            Count.runs += 1

    rng = np.random.default_rng(0)

    def rows(n):
        x = {
            "dense": rng.random((n, 3)).astype("float32"),
            "sparse": rng.integers(0, 20, (n, 4)).astype("int32"),
        }
        y = (x["sparse"][:, :1] % 2).astype("float32")
        return x, y

    train, val = rows(512), rows(256)
    hypermodel = RankingHyperModel(
        "rm1",
        vocabulary_sizes=[20] * 4,
        num_dense=3,
        overrides={"bottom_units": [8], "top_units": [8], "batch_size": 256},
        fixed={"num_layers": 1, "ffn_dim": 32},
        run_eagerly=True,
    )
    tuner = search.run_search(
        hypermodel, train, val, sys.argv[1], max_trials=2,
        callbacks=[Count()],
    )
    report = {"worker": search.is_worker(), "runs": Count.runs}
    if not search.is_worker():
        report["trials"] = {
            i: t.status for i, t in tuner.oracle.trials.items()
        }
        search.write_summary(tuner, sys.argv[1], hypermodel)
    print("REPORT " + json.dumps(report))
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _report(stdout):
    for line in stdout.splitlines():
        if line.startswith("REPORT "):
            return json.loads(line[len("REPORT ") :])
    raise AssertionError(f"no report in:\n{stdout[-2000:]}")


@pytest.mark.slow
def test_chief_and_two_workers(tmp_path):
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(
                [str(REPO), env.get("PYTHONPATH", "")]
            ),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(port),
        }
    )
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        processes[tuner_id] = subprocess.Popen(
            [sys.executable, "-c", JOB, str(tmp_path)],
            env={**env, "KERASTUNER_TUNER_ID": tuner_id},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            stdout, stderr = process.communicate(timeout=240)
            assert process.returncode == 0, stderr[-4000:]
            outputs[tuner_id] = _report(stdout)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()

    chief = outputs["chief"]
    # The chief only serves the oracle; the workers ran the 2 trials, each
    # once.
    assert chief["worker"] is False and chief["runs"] == 0
    assert chief["trials"] == {"0": "COMPLETED", "1": "COMPLETED"}
    assert outputs["tuner0"]["worker"] and outputs["tuner1"]["worker"]
    assert outputs["tuner0"]["runs"] + outputs["tuner1"]["runs"] == 2
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert [r["status"] for r in rows] == ["COMPLETED", "COMPLETED"]
