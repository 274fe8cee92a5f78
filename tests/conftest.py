import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

from tests import samples  # noqa: E402


@pytest.fixture(scope="session")
def criteo_file(tmp_path_factory):
    """The real Criteo sample (10,000 rows) if present, else as many
    synthetic Criteo rows in the same TSV format."""
    real = samples.shared_data_file(samples.CRITEO_SAMPLE)
    if real is not None:
        return str(real)
    from keras_adrec.data import SyntheticCriteo

    directory = tmp_path_factory.mktemp("synthetic_criteo")
    generator = SyntheticCriteo(rows_per_day=10_000, num_days=1, seed=0)
    return generator.write_tsv(str(directory))[0]


def pytest_collection_modifyitems(config, items):
    """Skip `tensorflow_only` tests when Keras runs on another backend.

    `KERAS_BACKEND=jax python -m pytest tests/layers tests/models` runs the
    backend-agnostic tests on JAX; tests marked
    `@pytest.mark.tensorflow_only(reason=...)` need TensorFlow by nature
    and are skipped there with their reason.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is None:
            continue
        reason = marker.kwargs.get("reason") or (
            marker.args[0] if marker.args else "needs TensorFlow"
        )
        item.add_marker(
            pytest.mark.skip(reason=f"TensorFlow only ({backend}): {reason}")
        )
