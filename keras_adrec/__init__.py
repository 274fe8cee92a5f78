"""keras_adrec: Ad-Rec masked-transformer feature interactions for Keras 3.

Ad-Rec (Adnan et al., NeurIPS 2023 ML for Systems workshop) replaces DLRM's
dot-product feature interaction with a masked transformer.

Submodules load on first use (`keras_adrec.layers`, `keras_adrec.models`,
`keras_adrec.data`, `keras_adrec.training`), so that the `adrec` command can
check its arguments before TensorFlow loads.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_adrec.version import __version__  # noqa: E402

_SUBMODULES = ("data", "export", "layers", "models", "training")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_adrec.{name}")
    raise AttributeError(f"module 'keras_adrec' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))


__all__ = ["__version__", *_SUBMODULES]
