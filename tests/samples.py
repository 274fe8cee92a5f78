"""Where the tests find the research-only data samples.

`ADREC_DATA_DIR` wins; otherwise `../shared/data` beside the checkout. The
samples are never copied into the repository: tests that need one skip (or
fall back to synthetic rows) when it is absent.
"""

import os
import pathlib

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

CRITEO_SAMPLE = "criteo/train_head10k.txt"
AVAZU_SAMPLE = "avazu/train_head9999.csv"
TAOBAO_SAMPLE = "taobao/UserBehavior_head84k.csv"


def shared_data_dir():
    """The directory of the real data samples (it may not exist)."""
    env = os.environ.get("ADREC_DATA_DIR")
    if env:
        return pathlib.Path(env)
    return _REPO_ROOT.parent / "shared" / "data"


def shared_data_file(relative):
    """`shared_data_dir() / relative`, or None if it is absent."""
    path = shared_data_dir() / relative
    return path if path.is_file() else None


def criteo_auc_bar(real_bar):
    """The validation-AUC bar of a test on `criteo_file` (tests/conftest.py).

    `real_bar` when the real Criteo sample is present. Otherwise the
    fixture's synthetic rows stand in, whose last 2,000 rows validate with
    525 positives and 1,475 negatives: the AUC's standard error under chance
    is then sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.0147, and the bar is 0.53,
    2 of them above chance (RM1 reaches about 0.55-0.57 there in one epoch).
    """
    return real_bar if shared_data_file(CRITEO_SAMPLE) is not None else 0.53
