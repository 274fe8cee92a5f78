"""keras_adrec: Ad-Rec masked-transformer feature interactions for Keras 3.

Ad-Rec (Adnan et al., NeurIPS 2023 ML for Systems workshop) replaces DLRM's
dot-product feature interaction with a masked transformer.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_adrec import layers  # noqa: E402
from keras_adrec.version import __version__  # noqa: E402

__all__ = ["layers", "__version__"]
