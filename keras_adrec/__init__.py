"""keras_adrec: Ad-Rec masked-transformer feature interactions for Keras 3.

Ad-Rec (Adnan et al., NeurIPS 2023 ML for Systems workshop) replaces
DLRM's dot-product feature interaction with a masked transformer.

`import keras_adrec` registers every layer and model for Keras
serialization, so `keras.saving.load_model` reads a `.keras` file that
`adrec train` wrote with nothing else imported. Packages, bottom to top:
`layers` -> `models` -> `data` -> `training` -> `export`, `tuning` ->
`jobs` -> `cli`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_adrec import _native_logs  # noqa: E402
from keras_adrec.version import __version__  # noqa: E402

with _native_logs.quiet_for_command():
    from keras_adrec import layers  # noqa: E402
    from keras_adrec import models  # noqa: E402

# The application packages load on first use.
_LAZY = ("data", "training", "export", "tuning", "jobs", "cli")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"keras_adrec.{name}")
    raise AttributeError(f"module 'keras_adrec' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__", "layers", "models", *_LAZY]
