"""The layout of a trained model directory, in one place.

`adrec train` (and `adrec tune` for its best model) writes, and `adrec
evaluate` / `adrec export` read, a directory holding:

- `model.keras`: the Keras model (preprocessed ids in, probability out);
- `preprocessing/`: the fitted `FeaturePreprocessor` (ranking data) or
  `TaobaoVocabulary` (sequential data) artifacts;
- `config.json`: data kind and paths, split, seed, preset fields;
- `curve.csv`: step, train loss, val AUC, val logloss, val accuracy, time;
- `metrics.json`: the validation metrics and run facts (strict JSON: a
  non-finite number is null and named in its `"warnings"` list);
- `.adrec-run.json`: the run marker (`keras_adrec.training.run_folder`),
  which lets `--overwrite` replace this run and nothing else.
"""

import json
import pathlib
import zipfile

import keras

from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary
from keras_adrec.training.run_checks import strict_json
from keras_adrec.training.run_folder import MARKER_FILE
from keras_adrec.training.run_folder import ModelDirectoryError
from keras_adrec.training.run_folder import OutputInUseError
from keras_adrec.training.run_folder import RunExistsError
from keras_adrec.training.run_folder import check_output
from keras_adrec.training.run_writes import staged_output

MODEL_FILE = "model.keras"
PREPROCESSING_DIR = "preprocessing"
CONFIG_FILE = "config.json"
CURVE_FILE = "curve.csv"
METRICS_FILE = "metrics.json"
# Every top-level name of a model directory (besides its run marker).
MODEL_DIRECTORY_FILES = (
    MODEL_FILE,
    PREPROCESSING_DIR,
    CONFIG_FILE,
    CURVE_FILE,
    METRICS_FILE,
)


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
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelDirectoryError(
                f"{self.config_path} is not valid JSON ({error})."
            ) from None

    def data_kind(self):
        """The data kind the model was trained on (`config["data"]["kind"]`)."""
        return self.read_config().get("data", {}).get("kind")

    def write_metrics(self, metrics):
        """Write `metrics.json` as strict JSON: a non-finite number is
        written as null and named in its `"warnings"` list."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path.write_text(strict_json(metrics))

    def read_metrics(self):
        return json.loads(self.metrics_path.read_text())

    def save_model(self, model):
        self.path.mkdir(parents=True, exist_ok=True)
        model.save(self.model_path)

    def load_model(self):
        """The saved Keras model.

        Raises:
            FileNotFoundError: the directory holds no trained model.
            ModelDirectoryError: `model.keras` cannot be read (truncated,
                corrupt), naming the file.
        """
        self.check()
        if not zipfile.is_zipfile(self.model_path):
            raise ModelDirectoryError(
                f"{self.model_path} cannot be read: it is damaged, not a "
                "complete .keras (zip) archive (truncated by an interrupted "
                "copy?); retrain it or restore the file."
            )
        try:
            return keras.saving.load_model(self.model_path)
        except Exception as error:  # zipfile, h5py and Keras errors alike
            raise ModelDirectoryError(
                f"{self.model_path} cannot be read as a Keras model "
                f"({type(error).__name__}: {_first_line(error)}); retrain it "
                "or restore the file."
            ) from None

    def load_ranking(self):
        """`(model, preprocessor, config)` of a ranking model directory."""
        self._check_preprocessing()
        model = self.load_model()
        preprocessor = self._load_preprocessing(FeaturePreprocessor)
        return model, preprocessor, self.read_config()

    def load_sequential(self):
        """`(model, vocabulary, config)` of a sequential model directory."""
        self._check_preprocessing()
        model = self.load_model()
        vocabulary = self._load_preprocessing(TaobaoVocabulary)
        return model, vocabulary, self.read_config()

    def _check_preprocessing(self):
        if not self.preprocessing_path.is_dir():
            raise ModelDirectoryError(
                f"{self.path} lacks {PREPROCESSING_DIR}/ (the fitted "
                "vocabularies the model needs); copy the whole model folder "
                "or retrain it."
            )

    def _load_preprocessing(self, cls):
        """`cls.load_artifacts(preprocessing/)`, or `ModelDirectoryError`
        naming the folder and what is wrong with it."""
        self._check_preprocessing()
        try:
            return cls.load_artifacts(self.preprocessing_path)
        except Exception as error:  # missing, truncated or corrupt files
            raise ModelDirectoryError(
                f"{self.preprocessing_path} cannot be read "
                f"({type(error).__name__}: {_first_line(error)}); copy the "
                "whole model folder or retrain it."
            ) from None


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


__all__ = [
    "MARKER_FILE",
    "ModelDirectory",
    "ModelDirectoryError",
    "OutputInUseError",
    "RunExistsError",
    "check_output",
    "staged_output",
]
