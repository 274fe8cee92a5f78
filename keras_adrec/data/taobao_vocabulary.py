"""Raw-id vocabularies of the Taobao sequential data (user, item, category)."""

import json
import os

import numpy as np

COLUMNS = ("user", "item", "category")
_CONFIG_FILE = "taobao_vocabulary.json"
_FORMAT = "keras_adrec.TaobaoVocabulary"
_VERSION = 1


class TaobaoVocabulary:
    """Maps raw Taobao user, item and category ids to contiguous indices.

    Each column keeps the sorted distinct raw ids it was fitted on; raw id
    `vocabulary[k]` maps to index `k + 1` and every other raw id maps to 0,
    the out-of-vocabulary (OOV) index. `prepare_taobao` fits it on the
    training points only, so users, items and categories seen only in the
    validation period map to 0.

    Args:
        users: 1-D integer array. Raw user ids (any order, duplicates
            allowed).
        items: 1-D integer array. Raw item ids.
        categories: 1-D integer array. Raw category ids.

    Example:

    >>> vocabulary = TaobaoVocabulary([7, 3], [10], [5, 5])
    >>> vocabulary.vocabulary_sizes
    [3, 2, 2]
    >>> vocabulary.lookup("user", [3, 7, 99]).tolist()
    [1, 2, 0]
    """

    def __init__(self, users, items, categories):
        self._vocabularies = {}
        for name, values in zip(COLUMNS, (users, items, categories)):
            values = np.asarray(values)
            if values.ndim != 1 or (
                values.size and values.dtype.kind not in "iu"
            ):
                raise ValueError(
                    f"`{name}` ids must be a 1-D integer array. Received: "
                    f"shape={values.shape}, dtype={values.dtype}"
                )
            self._vocabularies[name] = np.unique(values.astype(np.int64))

    @property
    def vocabulary_sizes(self):
        """`[user, item, category]` table sizes, the OOV index included."""
        return [len(self._vocabularies[name]) + 1 for name in COLUMNS]

    def vocabulary(self, column):
        """The sorted raw ids of `column` (`"user"`, `"item"`, `"category"`)."""
        self._check_column(column)
        return self._vocabularies[column].copy()

    def lookup(self, column, raw_ids):
        """Map raw ids of `column` to int32 indices (0 = OOV), any shape."""
        self._check_column(column)
        position = sorted_position(self._vocabularies[column], raw_ids)
        return (position + 1).astype(np.int32)

    def save_artifacts(self, directory):
        """Write the vocabularies into `directory` (created if needed).

        Files: `taobao_vocabulary.json` (format, version, sizes, file names)
        and `taobao_vocabulary_{user,item,category}.txt`, one raw id per
        line, line `k` (1-based) holding the raw id of index `k`.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        files = {}
        for name in COLUMNS:
            file_name = f"taobao_vocabulary_{name}.txt"
            files[name] = file_name
            ids = self._vocabularies[name]
            with open(os.path.join(directory, file_name), "w") as f:
                if len(ids):
                    f.write("\n".join(map(str, ids.tolist())))
                    f.write("\n")
        config = {
            "format": _FORMAT,
            "version": _VERSION,
            "columns": list(COLUMNS),
            "vocabulary_sizes": self.vocabulary_sizes,
            "oov_index": 0,
            "files": files,
        }
        with open(os.path.join(directory, _CONFIG_FILE), "w") as f:
            json.dump(config, f, indent=2)

    @classmethod
    def load_artifacts(cls, directory):
        """Read vocabularies written by `save_artifacts`."""
        directory = os.fspath(directory)
        config_path = os.path.join(directory, _CONFIG_FILE)
        if not os.path.isfile(config_path):
            raise FileNotFoundError(
                f"No {_CONFIG_FILE} in {directory}. Save the vocabulary "
                "there with TaobaoVocabulary.save_artifacts(directory)."
            )
        with open(config_path) as f:
            config = json.load(f)
        if config.get("format") != _FORMAT or config.get("version") != _VERSION:
            raise ValueError(
                f"{config_path} is not a version {_VERSION} {_FORMAT} file. "
                f"Received: format={config.get('format')!r}, "
                f"version={config.get('version')!r}"
            )
        ids = {}
        for name, size in zip(COLUMNS, config["vocabulary_sizes"]):
            with open(os.path.join(directory, config["files"][name])) as f:
                values = np.array(f.read().split(), dtype=np.int64)
            if len(values) + 1 != size or np.any(np.diff(values) <= 0):
                raise ValueError(
                    f"The {name} vocabulary in {directory} is corrupt: "
                    f"expected {size - 1} sorted distinct ids, found "
                    f"{len(values)}."
                )
            ids[name] = values
        return cls(ids["user"], ids["item"], ids["category"])

    def _check_column(self, column):
        if column not in COLUMNS:
            raise ValueError(
                f"`column` must be one of {COLUMNS}. Received: "
                f"column={column!r}"
            )

    def __eq__(self, other):
        if not isinstance(other, TaobaoVocabulary):
            return NotImplemented
        return all(
            np.array_equal(self._vocabularies[n], other._vocabularies[n])
            for n in COLUMNS
        )

    def __repr__(self):
        return f"TaobaoVocabulary(vocabulary_sizes={self.vocabulary_sizes})"


# Largest dense table (entries) `sorted_position` builds beyond 4 per id.
_DENSE_TABLE_SLACK = 1 << 24


def sorted_position(sorted_ids, values):
    """Position of each of `values` in `sorted_ids` (distinct), -1 if absent.

    Uses a dense table indexed by `value - sorted_ids[0]` when the id range
    is small enough (Taobao ids are below 10M: one gather per value), else a
    binary search.
    """
    values = np.asarray(values, dtype=np.int64)
    if len(sorted_ids) == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if high - low < 4 * len(sorted_ids) + _DENSE_TABLE_SLACK:
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[sorted_ids - low] = np.arange(len(sorted_ids))
        inside = (values >= low) & (values <= high)
        return np.where(inside, table[np.where(inside, values - low, 0)], -1)
    position = np.searchsorted(sorted_ids, values)
    clipped = np.minimum(position, len(sorted_ids) - 1)
    return np.where(sorted_ids[clipped] == values, position, -1)
