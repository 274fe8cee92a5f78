"""A user's table described by a schema file: `TableSchema`.

`adrec train --data parquet:PATH --schema schema.json` (or `csv:PATH`)
reads any table whose columns the schema file names:

```json
{"label": "clicked",
 "dense": ["I1", "I2"],
 "categorical": ["C1", "C2"],
 "multi_hot": ["tags"],
 "group": "user"}
```

Every key but `label` is optional; no other key is allowed. The format is
described in docs/schema.md.
"""

import dataclasses
import json

from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.schema import DatasetSchema

SCHEMA_KEYS = (
    "label",
    "dense",
    "categorical",
    "multi_hot",
    "group",
    "combiner",
)
COMBINERS = ("sum", "mean", "attention")


class SchemaFileError(DataFormatError):
    """A schema file that cannot describe a table (exit status 1)."""


@dataclasses.dataclass(frozen=True)
class TableSchema:
    """The columns of a user's click table and the role of each.

    Args:
        label: str. The 0/1 click column.
        dense: tuple of str. Numeric columns (nulls allowed), log
            transformed as Criteo's counts are. Defaults to `()`.
        categorical: tuple of str. String or integer columns, one id each.
            Defaults to `()`.
        multi_hot: tuple of str. List columns (Parquet `list<string>` or
            `list<int64>`; in CSV, values joined by `|`), one bag of ids
            each. Defaults to `()`.
        group: str or None. The column whose values group the rows for
            GAUC (a user id); it may also be a dense or categorical
            feature. Defaults to None.
        combiner: str. How a bag of ids is pooled into one token:
            `"sum"`, `"mean"` or `"attention"`
            (`keras_adrec.layers.MultiHotEmbedding`). Defaults to `"mean"`.

    Example:

    ```python
    schema = keras_adrec.data.TableSchema(
        label="clicked", dense=("I1",), multi_hot=("tags",), group="user"
    )
    schema.columns  # ('clicked', 'I1', 'tags', 'user')
    ```
    """

    label: str
    dense: tuple = ()
    categorical: tuple = ()
    multi_hot: tuple = ()
    group: str | None = None
    combiner: str = "mean"

    def __post_init__(self):
        if self.combiner not in COMBINERS:
            raise ValueError(
                f"`combiner` must be one of {', '.join(COMBINERS)}. "
                f"Received: combiner={self.combiner!r}"
            )
        for key in ("dense", "categorical", "multi_hot"):
            value = getattr(self, key)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ValueError(
                    f"`{key}` must be a list of column names. "
                    f"Received: {key}={value!r}"
                )
            object.__setattr__(self, key, tuple(value))
        names = [self.label, *self.features]
        group = [self.group] if self.group is not None else []
        for name in names + group:
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"Column names must be non-empty strings. Received: "
                    f"{name!r}"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"A column may have one role only. Received more than one "
                f"for: {', '.join(duplicates)}"
            )
        if self.group == self.label:
            raise ValueError(
                f"The group column cannot be the label ({self.label})."
            )
        if not self.features:
            raise ValueError(
                "The schema names no feature column: give at least one of "
                "`dense`, `categorical` or `multi_hot`."
            )

    @property
    def features(self):
        """The feature columns: dense, categorical, multi-hot."""
        return self.dense + self.categorical + self.multi_hot

    @property
    def columns(self):
        """Every column the schema reads, label first, group last."""
        extra = self.group is not None and self.group not in self.features
        return (self.label, *self.features, *((self.group,) if extra else ()))

    def dataset_schema(self):
        """The `DatasetSchema` of the dense and categorical columns."""
        return DatasetSchema(
            name="table",
            # A table of multi-hot columns only has no dense or
            # categorical column; the bottom MLP then sees one zero.
            dense_names=list(self.dense) or ["(none)"],
            categorical_names=list(self.categorical),
            label_name=self.label,
        )

    def to_dict(self):
        """The schema file's JSON object."""
        result = {
            "label": self.label,
            "dense": list(self.dense),
            "categorical": list(self.categorical),
            "multi_hot": list(self.multi_hot),
        }
        if self.group is not None:
            result["group"] = self.group
        result["combiner"] = self.combiner
        return result

    @classmethod
    def from_dict(cls, config):
        """Build from a schema file's object; unknown keys are an error."""
        if not isinstance(config, dict):
            raise ValueError(
                "A schema must be a JSON object with keys "
                f"{', '.join(SCHEMA_KEYS)}. Received: {type(config).__name__}"
            )
        unknown = sorted(set(config) - set(SCHEMA_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown schema key {unknown[0]!r}; the keys are "
                f"{', '.join(SCHEMA_KEYS)}."
            )
        if "label" not in config:
            raise ValueError("The schema has no `label` column.")
        return cls(**config)


def load_table_schema(path):
    """Read and check a schema file.

    Args:
        path: str or path. A JSON file (see `TableSchema`).

    Returns:
        A `TableSchema`.

    Raises:
        SchemaFileError: the file is missing, not JSON, or not a schema;
            the message names the file.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except OSError as error:
        raise SchemaFileError(
            path, None, f"cannot read the schema file ({error.strerror})"
        ) from error
    except json.JSONDecodeError as error:
        raise SchemaFileError(
            path, error.lineno, f"not JSON ({error.msg})"
        ) from error
    try:
        return TableSchema.from_dict(config)
    except (TypeError, ValueError) as error:
        raise SchemaFileError(path, None, str(error)) from error
