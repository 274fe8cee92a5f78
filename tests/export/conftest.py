"""Model directories the export tests share: built fast, from real rows.

`ranking_model_dir`: an untrained RM1 Ad-Rec model (random weights, so
its predictions vary) with vocabularies fitted on the first rows of the
Criteo sample (`criteo_file`: the real sample when present, synthetic
rows otherwise); its `config.json` names that file as the training data,
as `adrec train` does. `ranking_saved_model`: its plain SavedModel export
(version 1 in a folder of its own), for tests that only read it.
`sequential_model_dir`: an RM4 model trained for one epoch on a small
synthetic `UserBehavior.csv`.
"""

import json

import numpy as np
import pytest

VOCABULARY_ROWS = 1000


@pytest.fixture(scope="session")
def ranking_model_dir(tmp_path_factory, criteo_file):
    from keras_adrec import data as adrec_data
    from keras_adrec.models import RankingModel

    directory = tmp_path_factory.mktemp("ranking_export") / "model"
    schema = adrec_data.CRITEO_SCHEMA
    rows = adrec_data.criteo_dataset(criteo_file, VOCABULARY_ROWS).take(1)
    preprocessor = adrec_data.FeaturePreprocessor.fit(rows, schema)
    model = RankingModel.from_preset(
        "rm1",
        vocabulary_sizes=preprocessor.vocabulary_sizes,
        num_dense=schema.num_dense,
        interaction="adrec",
        bottom_units=[16],
        top_units=[16],
    )
    model.build(
        {
            "dense": (None, schema.num_dense),
            "sparse": (None, schema.num_categorical),
        }
    )
    directory.mkdir()
    model.save(directory / "model.keras")
    preprocessor.save_artifacts(directory / "preprocessing")
    (directory / "config.json").write_text(
        json.dumps(
            {
                "data": {"kind": "criteo", "paths": [str(criteo_file)]},
                "preset": {"name": "rm1"},
            }
        )
    )
    return directory


@pytest.fixture(scope="session")
def ranking_saved_model(tmp_path_factory, ranking_model_dir):
    from keras_adrec.export import export_for_serving

    return export_for_serving(
        ranking_model_dir, tmp_path_factory.mktemp("ranking_saved_model")
    )


def write_events(path, num_users=14, events_per_user=34, seed=0):
    """A small UserBehavior.csv: users' events in time order, raw ids."""
    rng = np.random.default_rng(seed)
    behaviors = ("pv", "cart", "fav", "buy")
    lines = []
    for user in range(1, num_users + 1):
        times = 1511500000 + np.sort(
            rng.integers(0, 9 * 86400, events_per_user)
        )
        for t in times:
            item = int(rng.integers(1000, 1060))
            behavior = behaviors[int(rng.integers(0, 4))]
            lines.append(f"{user * 7},{item},{item % 13 + 100},{behavior},{t}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def sequential_model_dir(tmp_path_factory):
    from keras_adrec.jobs.train_sequential import TrainSequentialSettings
    from keras_adrec.jobs.train_sequential import train_sequential
    from keras_adrec.models import get_preset

    root = tmp_path_factory.mktemp("sequential_export")
    events = root / "events.csv"
    write_events(events)
    model_dir = root / "run"
    train_sequential(
        TrainSequentialSettings(
            path=events,
            output=model_dir,
            preset=get_preset(
                "rm4", interaction="adrec", epochs=1, batch_size=32
            ),
            seed=0,
            verbose=False,
        )
    )
    return model_dir
