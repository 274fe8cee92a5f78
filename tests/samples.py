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
