"""keras_adrec: Ad-Rec masked-transformer feature interactions for Keras 3.

Ad-Rec (Adnan et al., NeurIPS 2023 ML for Systems workshop) replaces
DLRM's dot-product feature interaction with a masked transformer.

`import keras_adrec` registers every layer and model for Keras
serialization, so `keras.saving.load_model` reads a `.keras` file that
`adrec train` wrote with nothing else imported. It changes nothing
global: Keras runs on the backend that `KERAS_BACKEND` or `keras.json`
chooses, and the environment, file descriptors and TensorFlow's settings
stay as they were. Packages, bottom to top: `layers` -> `models` -> `data`
-> `training` -> `export`, `tuning` -> `jobs` -> `cli`.
"""

from keras_adrec import _command_process
from keras_adrec.version import __version__

# Only in the `adrec` command's own process: Keras loads on TensorFlow with
# its C++ logs quiet (see `_command_process`). Elsewhere a plain import.
with _command_process.prepared():
    from keras_adrec import layers
    from keras_adrec import models

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
