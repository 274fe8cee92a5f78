"""The layout of a trained model directory, in one place.

`adrec train` (and `adrec tune` for its best model) writes, and `adrec
evaluate` / `adrec export` read, a directory holding:

- `model.keras`: the Keras model (preprocessed ids in, probability out);
- `preprocessing/`: the fitted `FeaturePreprocessor` (ranking data) or
  `TaobaoVocabulary` (sequential data) artifacts;
- `config.json`: data kind and paths, split, seed, preset fields;
- `curve.csv`: step, train loss, val AUC, val logloss, val accuracy, time;
- `metrics.json`: the validation metrics and run facts.
"""

import json
import pathlib

import keras

from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary

MODEL_FILE = "model.keras"
PREPROCESSING_DIR = "preprocessing"
CONFIG_FILE = "config.json"
CURVE_FILE = "curve.csv"
METRICS_FILE = "metrics.json"


class ModelDirectory:
    """A trained model directory: its file names, and reading and writing.

    Args:
        path: str or path-like. The directory.

    Example:

    ```python
    run = keras_adrec.training.ModelDirectory("runs/rm1")
    model, preprocessor, config = run.load_ranking()
    ```
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __repr__(self):
        return f"ModelDirectory({str(self.path)!r})"

    @property
    def model_path(self):
        return self.path / MODEL_FILE

    @property
    def preprocessing_path(self):
        return self.path / PREPROCESSING_DIR

    @property
    def config_path(self):
        return self.path / CONFIG_FILE

    @property
    def curve_path(self):
        return self.path / CURVE_FILE

    @property
    def metrics_path(self):
        return self.path / METRICS_FILE

    def is_complete(self):
        """True when the model and its config are both present."""
        return self.model_path.is_file() and self.config_path.is_file()

    def check(self):
        """Raise `FileNotFoundError` naming what a trained directory lacks."""
        for path in (self.model_path, self.config_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"No trained model in {self.path}: {path.name} is "
                    "missing (write one with `adrec train --output DIR`)."
                )

    def write_config(self, config):
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2))

    def read_config(self):
        try:
            return json.loads(self.config_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{self.config_path} is not valid JSON ({error})."
            ) from None

    def data_kind(self):
        """The data kind the model was trained on (`config["data"]["kind"]`)."""
        return self.read_config().get("data", {}).get("kind")

    def write_metrics(self, metrics):
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path.write_text(json.dumps(metrics, indent=2))

    def read_metrics(self):
        return json.loads(self.metrics_path.read_text())

    def save_model(self, model):
        self.path.mkdir(parents=True, exist_ok=True)
        model.save(self.model_path)

    def load_model(self):
        """The saved Keras model; `ValueError` naming the file if unreadable."""
        self.check()
        try:
            return keras.saving.load_model(self.model_path)
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(
                f"{self.model_path} cannot be read as a Keras model "
                f"({type(error).__name__}: {error})."
            ) from None

    def load_ranking(self):
        """`(model, preprocessor, config)` of a ranking model directory."""
        model = self.load_model()
        preprocessor = FeaturePreprocessor.load_artifacts(
            self.preprocessing_path
        )
        return model, preprocessor, self.read_config()

    def load_sequential(self):
        """`(model, vocabulary, config)` of a sequential model directory."""
        model = self.load_model()
        vocabulary = TaobaoVocabulary.load_artifacts(self.preprocessing_path)
        return model, vocabulary, self.read_config()
