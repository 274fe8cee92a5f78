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

import contextlib
import fcntl
import json
import os
import pathlib
import shutil

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
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelDirectoryError(
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
        """The saved Keras model.

        Raises:
            FileNotFoundError: the directory holds no trained model.
            ModelDirectoryError: `model.keras` cannot be read (truncated,
                corrupt), naming the file.
        """
        self.check()
        try:
            return keras.saving.load_model(self.model_path)
        except Exception as error:  # zipfile, h5py and Keras errors alike
            raise ModelDirectoryError(
                f"{self.model_path} cannot be read as a Keras model "
                f"({type(error).__name__}: {error}); retrain it or restore "
                "the file."
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


class ModelDirectoryError(ValueError):
    """A model directory whose files cannot be read (named in the text)."""


class OutputInUseError(FileExistsError):
    """Another run is writing the same output directory right now."""


class RunExistsError(FileExistsError):
    """The output directory holds a finished run and overwrite is off."""


def check_output(target, overwrite=False, inputs=()):
    """Refuse an output that would replace a run or sit inside the data.

    Args:
        target: the output directory.
        overwrite: bool. Allow replacing a finished run.
        inputs: paths read by the run (files or directories).

    Raises:
        RunExistsError: `target` is not empty and `overwrite` is False.
        ValueError: `target` is, or is inside, one of `inputs`.
    """
    target = pathlib.Path(target)
    resolved = target.resolve()
    for source in inputs:
        source = pathlib.Path(source).resolve()
        if resolved == source or source in resolved.parents:
            raise ValueError(
                f"The output {target} lies inside the input {source}; "
                "choose an output outside the data."
            )
    if target.exists() and not overwrite:
        if not target.is_dir() or any(target.iterdir()):
            raise RunExistsError(
                f"{target} already holds files (a finished run?); pass "
                "--overwrite to replace it, or choose another --output."
            )


@contextlib.contextmanager
def staged_output(target, overwrite=False, enabled=True):
    """Write a run into a hidden folder beside `target`; rename on success.

    While the block runs, a lock (`.NAME.lock` beside `target`, an
    advisory `flock` that dies with the process) refuses a second run
    into the same `target`. When the block ends normally the staging
    folder replaces `target` (only if it did not exist, or with
    `overwrite`); when it raises, the staging folder is removed and
    `target` is left as it was. A reader never sees a half-written run.

    Args:
        target: the output directory.
        overwrite: bool. Replace an existing `target`.
        enabled: bool. False yields `target` itself and does nothing
            (a non-chief worker of a distributed run writes nothing).

    Yields:
        The `pathlib.Path` to write into.

    Raises:
        OutputInUseError: another process holds the lock.
        RunExistsError: `target` holds files and `overwrite` is False.
    """
    target = pathlib.Path(target)
    if not enabled:
        yield target
        return
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    lock_path = parent / f".{target.name}.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise OutputInUseError(
                f"Another adrec run ({holder}) is writing {target} now; "
                "wait for it or choose another --output."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            check_output(target, overwrite=overwrite)
            # We hold the lock: staging folders left here are from runs
            # that were killed.
            for stale in parent.glob(f".{target.name}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
            staging = parent / f".{target.name}.partial-{os.getpid()}"
            staging.mkdir()
            try:
                yield staging
                _replace(staging, target)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        finally:
            lock_path.unlink(missing_ok=True)


def _replace(staging, target):
    """Rename `staging` to `target`, removing an old `target` after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
