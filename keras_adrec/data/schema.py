"""Column layout of a data set: dense columns, categorical columns, label."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetSchema:
    """Names of a data set's dense and categorical model inputs.

    Readers yield `({"dense": float32 [B, num_dense], "categorical":
    string [B, num_categorical]}, label float32 [B, 1])` with columns in
    the order of `dense_names` and `categorical_names`.

    Args:
        name: str. The data set, e.g. "criteo".
        dense_names: list of str. Dense (numeric) columns, in order.
        categorical_names: list of str. Categorical columns, in order.
        label_name: str. The label column of the source file.

    Example:

    ```python
    schema = keras_adrec.data.CRITEO_SCHEMA
    schema.num_dense, schema.num_categorical  # (13, 26)
    ```
    """

    name: str
    dense_names: list
    categorical_names: list
    label_name: str = "label"

    def __post_init__(self):
        # Frozen: assign through object.__setattr__ to normalise to lists.
        object.__setattr__(self, "dense_names", list(self.dense_names))
        object.__setattr__(
            self, "categorical_names", list(self.categorical_names)
        )
        names = self.dense_names + self.categorical_names
        if not names:
            raise ValueError(
                "A schema needs at least one dense or categorical column. "
                f"Received: dense_names={self.dense_names}, "
                f"categorical_names={self.categorical_names}"
            )
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(
                    "Column names must be non-empty strings. "
                    f"Received: {name!r}"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Column names must be unique. Received duplicates: "
                f"{duplicates}"
            )

    @property
    def num_dense(self):
        return len(self.dense_names)

    @property
    def num_categorical(self):
        return len(self.categorical_names)

    def to_dict(self):
        """A JSON-ready dict; `DatasetSchema(**schema.to_dict())` rebuilds."""
        return {
            "name": self.name,
            "dense_names": list(self.dense_names),
            "categorical_names": list(self.categorical_names),
            "label_name": self.label_name,
        }

    @classmethod
    def from_dict(cls, config):
        return cls(**config)


CRITEO_SCHEMA = DatasetSchema(
    name="criteo",
    dense_names=[f"I{i}" for i in range(1, 14)],
    categorical_names=[f"C{i}" for i in range(1, 27)],
    label_name="label",
)
"""Criteo Kaggle and Terabyte: 13 integer counts I1-I13, 26 hashes C1-C26."""

AVAZU_COLUMNS = [
    "id",
    "click",
    "hour",
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
]
"""The header of Avazu's `train.csv`, in order."""

AVAZU_SCHEMA = DatasetSchema(
    name="avazu",
    dense_names=["hour_of_day"],
    categorical_names=AVAZU_COLUMNS[3:],
    label_name="click",
)
"""Avazu as RM3 uses it: 1 dense (hour of day), 21 categorical (C1..C21)."""
