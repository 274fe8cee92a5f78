"""Where the research-only data samples live (never copied into the repo)."""

import os
import pathlib

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_data_dir():
    """Return the directory of the real data samples.

    `ADREC_DATA_DIR` wins; otherwise `../shared/data` beside the checkout.
    The directory may not exist: callers check and skip or fall back.
    """
    env = os.environ.get("ADREC_DATA_DIR")
    if env:
        return pathlib.Path(env)
    return _REPO_ROOT.parent / "shared" / "data"


def shared_data_file(relative):
    """Return `shared_data_dir() / relative`, or None if it is absent."""
    path = shared_data_dir() / relative
    return path if path.is_file() else None
