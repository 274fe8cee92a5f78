"""Searches on 2,000 synthetic Criteo rows: complete, resume, summarise."""

import csv
import json

import keras
import keras_tuner as kt
import numpy as np
import pytest

from keras_adrec.jobs.compare import load_comparison_data
from keras_adrec.tuning import RankingHyperModel
from keras_adrec.tuning import ValidationAUC
from keras_adrec.tuning import search

# Tiny MLPs; 1,600 training rows = 4 full batches of 400. Trials run
# eagerly: tracing a graph costs more than 4 eager steps.
TINY = {"bottom_units": [8], "top_units": [8], "batch_size": 400}


@pytest.fixture(scope="module")
def rows():
    # 5 synthetic days of 400 rows: days 0-3 train, day 4 validates.
    return load_comparison_data(synthetic_rows=2000, days=5)


def _hypermodel(rows, **kwargs):
    return RankingHyperModel(
        "rm1",
        vocabulary_sizes=rows.vocabulary_sizes,
        num_dense=rows.num_dense,
        overrides=TINY,
        run_eagerly=True,
        **kwargs,
    )


def pairwise_auc(labels, scores):
    """AUC by definition: P(score_pos > score_neg) + P(tie) / 2."""
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype="float64").reshape(-1)
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (pos.size * neg.size)


class _Interrupt(BaseException):
    """Stands for a killed job: KerasTuner does not catch it."""


class CountTrainings(keras.callbacks.Callback):
    """Counts `fit` calls; optionally interrupts the n-th one."""

    started = []

    def __init__(self, interrupt_at=None):
        super().__init__()
        self.interrupt_at = interrupt_at

    def on_train_begin(self, logs=None):
        CountTrainings.started.append(1)
        if self.interrupt_at == len(CountTrainings.started):
            raise _Interrupt()


def _statuses(tuner):
    return {i: t.status for i, t in tuner.oracle.trials.items()}


@pytest.mark.slow
def test_interrupted_search_resumes_without_repeating(rows, tmp_path):
    hypermodel = _hypermodel(rows, fixed={"num_layers": 1})
    train, val = rows.train, rows.val
    CountTrainings.started.clear()

    # Run 1 is "killed" as its second trial starts training.
    with pytest.raises(_Interrupt):
        search.run_search(
            hypermodel,
            train,
            val,
            tmp_path,
            max_trials=2,
            callbacks=[CountTrainings(interrupt_at=2)],
        )
    assert len(CountTrainings.started) == 2
    state = json.loads((tmp_path / "search" / "oracle.json").read_text())
    assert list(state["ongoing_trials"].values()) == ["1"]
    trial0 = json.loads(
        (tmp_path / "search" / "trial_0" / "trial.json").read_text()
    )
    assert trial0["status"] == "COMPLETED"
    trial1 = json.loads(
        (tmp_path / "search" / "trial_1" / "trial.json").read_text()
    )

    # The same command again: only the interrupted trial runs, with the
    # same hyperparameters; the finished one keeps its result.
    tuner = search.run_search(
        hypermodel,
        train,
        val,
        tmp_path,
        max_trials=2,
        callbacks=[CountTrainings()],
    )
    assert len(CountTrainings.started) == 3
    assert _statuses(tuner) == {"0": "COMPLETED", "1": "COMPLETED"}
    assert tuner.oracle.trials["0"].score == trial0["score"]
    assert (
        tuner.oracle.trials["1"].hyperparameters.values
        == trial1["hyperparameters"]["values"]
    )

    # More trials allowed: exactly one new trial runs.
    tuner = search.run_search(
        hypermodel,
        train,
        val,
        tmp_path,
        max_trials=3,
        callbacks=[CountTrainings()],
    )
    assert len(CountTrainings.started) == 4
    assert _statuses(tuner) == {
        "0": "COMPLETED",
        "1": "COMPLETED",
        "2": "COMPLETED",
    }
    values = [t.hyperparameters.values for t in tuner.oracle.trials.values()]
    assert len({json.dumps(v, sort_keys=True) for v in values}) == 3

    # A finished search rerun trains nothing.
    tuner = search.run_search(
        hypermodel,
        train,
        val,
        tmp_path,
        max_trials=3,
        callbacks=[CountTrainings()],
    )
    assert len(CountTrainings.started) == 4

    # The preset's defaults, trained like a trial, for comparison.
    baseline = search.train_defaults(hypermodel, train, val)
    assert baseline["hyperparameters"]["num_heads"] == 2
    assert baseline["hyperparameters"]["mask_thresholds"] == "geometric"
    assert 0.0 <= baseline["val_auc"] <= 1.0

    # The summary matches the oracle.
    paths = search.write_summary(tuner, tmp_path, hypermodel, baseline)
    with open(paths["csv"]) as handle:
        table = list(csv.DictReader(handle))
    assert [r["trial"] for r in table] == ["0", "1", "2"]
    scores = {i: t.score for i, t in tuner.oracle.trials.items()}
    for row in table:
        assert float(row["val_auc"]) == pytest.approx(scores[row["trial"]])
        assert row["num_heads"] in {"1", "2", "4", "8"}
    assert json.loads(open(paths["json"]).read())[0]["trial"] == "0"
    best_id = max(scores, key=scores.get)
    best = json.loads(open(paths["best"]).read())
    assert best["trial"] == best_id
    assert best["val_auc"] == pytest.approx(scores[best_id])
    assert best["hyperparameters"] == (
        tuner.oracle.trials[best_id].hyperparameters.values
    )
    assert best["fields"]["num_heads"] == best["hyperparameters"]["num_heads"]
    markdown = open(paths["markdown"]).read()
    assert "3 trials, 3 completed" in markdown
    assert f"val AUC {baseline['val_auc']:.4f}" in markdown
    assert best["baseline"] == baseline
    assert f"| **{best_id}** |" in markdown

    # The objective is the exact AUC of the best epoch's weights,
    # recomputed here by its definition.
    (model,) = tuner.get_best_models(1)
    scores_val = model.predict(val[0], verbose=0)
    assert pairwise_auc(val[1], scores_val) == pytest.approx(
        scores[best_id], abs=1e-9
    )


def test_resume_refuses_other_settings(rows, tmp_path):
    hypermodel = _hypermodel(rows)
    config = {"hypermodel": {"a": 1}, "tuner": "random", "epochs": 1}
    search.check_resume(tmp_path, config)
    search.check_resume(tmp_path, config)  # same settings: fine
    with pytest.raises(ValueError, match="epochs"):
        search.check_resume(tmp_path, {**config, "epochs": 2})
    search.check_resume(tmp_path, {**config, "epochs": 2}, overwrite=True)
    assert (
        json.loads((tmp_path / "search_config.json").read_text())["epochs"] == 2
    )
    with pytest.raises(ValueError, match="Unknown tuner"):
        search.make_tuner("grid", hypermodel, tmp_path)
    with pytest.raises(ValueError, match="max_trials"):
        search.make_tuner("random", hypermodel, tmp_path, max_trials=0)


@pytest.mark.parametrize(
    "kind, oracle",
    [
        ("random", kt.oracles.RandomSearchOracle),
        ("bayesian", kt.oracles.BayesianOptimizationOracle),
        ("hyperband", kt.oracles.HyperbandOracle),
    ],
)
def test_tuner_kinds(rows, tmp_path, kind, oracle):
    hypermodel = _hypermodel(rows, fixed={"num_heads": 2})
    tuner = search.make_tuner(
        kind, hypermodel, tmp_path, max_trials=5, epochs=2, seed=3
    )
    assert isinstance(tuner.oracle, oracle)
    assert tuner.oracle.max_trials == 5
    assert tuner.oracle.objective.name == "val_auc"
    assert tuner.oracle.objective.direction == "max"
    assert tuner.oracle.seed == 4  # seed + 1: KerasTuner ignores seed 0


@pytest.mark.slow
def test_hyperband_search(rows, tmp_path):
    hypermodel = _hypermodel(rows, fixed={"num_layers": 1, "ffn_dim": 64})
    tuner = search.run_search(
        hypermodel,
        rows.train,
        rows.val,
        tmp_path,
        tuner="hyperband",
        max_trials=1,
        epochs=1,
    )
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED", trial.message
    assert 0.0 <= trial.score <= 1.0
    # Hyperband sets each trial's epochs (`tuner/...` values).
    assert trial.hyperparameters.values["tuner/epochs"] == 1
    rows_ = search.trial_rows(tuner)
    assert rows_[0]["val_auc"] == pytest.approx(trial.score)


def test_bayesian_oracle_proposes_within_the_space(rows, tmp_path):
    # The Gaussian-process step on this space's hyperparameter types
    # (choices of strings, booleans, log floats, fixed values), fed with
    # made-up scores instead of trained trials.
    hypermodel = _hypermodel(
        rows, fixed={"ffn_dim": 64}, ranges={"dropout": (0.01, 0.1)}
    )
    tuner = search.make_tuner(
        "bayesian", hypermodel, tmp_path, max_trials=6, seed=1
    )
    oracle = tuner.oracle
    oracle.num_initial_points = 3
    for i in range(5):
        trial = oracle.create_trial("tuner0")
        assert trial.status == "RUNNING"
        values = trial.hyperparameters.values
        assert values["ffn_dim"] == 64
        assert 0.01 <= values["dropout"] <= 0.1
        assert values["num_heads"] in (1, 2, 4, 8)
        assert isinstance(values["norm_first"], bool)
        hypermodel.search_space.fields_for(values)  # resolves
        oracle.update_trial(trial.trial_id, {"val_auc": 0.5 + 0.01 * i})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(oracle.trials) == 5


def test_same_seed_same_trials(rows, tmp_path):
    # Fixed seeds: a fresh search in another directory proposes the same
    # hyperparameters.
    hypermodel = _hypermodel(rows)
    proposals = []
    for name in ("a", "b"):
        tuner = search.make_tuner(
            "random", hypermodel, tmp_path / name, max_trials=3, seed=7
        )
        proposals.append(
            [
                tuner.oracle.create_trial(f"t{i}").hyperparameters.values
                for i in range(3)
            ]
        )
    assert proposals[0] == proposals[1]
    assert len({json.dumps(p, sort_keys=True) for p in proposals[0]}) == 3


def test_validation_auc_callback_is_exact(rows):
    # A fixed scorer (an untrained model): the logs must hold the AUC by
    # its definition and the mean binary cross-entropy.
    features, labels = rows.val
    model = _hypermodel(rows).build(kt.HyperParameters())
    callback = ValidationAUC((features, labels))
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    scores = model.predict(features, verbose=0)
    assert logs["val_auc"] == pytest.approx(
        pairwise_auc(labels, scores), abs=1e-12
    )
    p = np.clip(scores.reshape(-1).astype("float64"), 1e-7, 1 - 1e-7)
    y = labels.reshape(-1)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert logs["val_logloss"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        ValidationAUC((features, labels), batch_size=0)


def test_fit_needs_validation_data(rows):
    hypermodel = _hypermodel(rows)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    with pytest.raises(ValueError, match="validation_data"):
        hypermodel.fit(hp, model, *rows.train)


@pytest.mark.slow
def test_diverged_trial_fails_without_stopping_the_job(tmp_path):
    # The fault is injected, not waited for: a NaN dense value makes the
    # first loss NaN, the trial is marked FAILED and the search returns.
    rng = np.random.default_rng(0)
    x = {
        "dense": rng.random((256, 3)).astype("float32"),
        "sparse": rng.integers(0, 20, (256, 4)).astype("int32"),
    }
    x["dense"][0, 0] = np.nan
    y = (x["sparse"][:, :1] % 2).astype("float32")
    hypermodel = RankingHyperModel(
        "rm1",
        vocabulary_sizes=[20] * 4,
        num_dense=3,
        overrides=TINY,
        fixed={"num_layers": 1},
        run_eagerly=True,
    )
    tuner = search.run_search(
        hypermodel, (x, y), (x, y), tmp_path, max_trials=1, epochs=2
    )
    (row,) = search.trial_rows(tuner)
    assert row["status"] == "FAILED" and row["val_auc"] is None
    assert search.best_trial(tuner) is None
    paths = search.write_summary(tuner, tmp_path, hypermodel)
    assert json.loads(open(paths["best"]).read()) is None
