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
