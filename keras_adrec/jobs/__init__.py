"""Jobs: what each `adrec` command runs, as plain Python functions.

- `train_ranking`, `train_sequential` (`adrec train`);
- `evaluate` (`adrec evaluate`);
- `compare` (`adrec compare`);
- `export_model` (`adrec export`);
- `keras_adrec.jobs.tune.tune` (`adrec tune`; import it explicitly: it
  needs the `tune` extra, keras-tuner).
"""

from keras_adrec.jobs.compare import compare
from keras_adrec.jobs.evaluate import evaluate
from keras_adrec.jobs.export import export_model
from keras_adrec.jobs.train_ranking import train_ranking
from keras_adrec.jobs.train_sequential import train_sequential

__all__ = [
    "compare",
    "evaluate",
    "export_model",
    "train_ranking",
    "train_sequential",
]
