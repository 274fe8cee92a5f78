"""Data: streaming readers, splits and DLRM preprocessing.

Readers (`criteo_dataset`, `avazu_dataset`, `make_dataset`) stream text
files into `tf.data.Dataset`s of `(raw_features, label)` batches:
`raw_features = {"dense": float32 [B, num_dense] (NaN = empty),
"categorical": tf.string [B, num_categorical]}`, `label` float32 [B, 1].
`FeaturePreprocessor` (fitted on the training split) maps raw features to
model inputs `{"dense": float32, "sparse": int32 ids}`; `preprocess` applies
it to a dataset.
"""

from keras_adrec.data._files import resolve_files
from keras_adrec.data.avazu import avazu_dataset
from keras_adrec.data.criteo import criteo_dataset
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.errors import raise_data_format_errors
from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.feature_preprocessor import count_vocabularies
from keras_adrec.data.feature_preprocessor import preprocess
from keras_adrec.data.kinds import DATA_KINDS
from keras_adrec.data.kinds import DataKind
from keras_adrec.data.kinds import data_kind
from keras_adrec.data.kinds import kind_names
from keras_adrec.data.kinds import make_dataset
from keras_adrec.data.kinds import make_train_val_datasets
from keras_adrec.data.kinds import parse_data_spec
from keras_adrec.data.kinds import schema_for
from keras_adrec.data.multi_hot_lookup import MultiHotLookup
from keras_adrec.data.multi_hot_lookup import preprocess_table
from keras_adrec.data.parquet import parquet_dataset
from keras_adrec.data.ranking_data import RankingData
from keras_adrec.data.ranking_data import load_ranking_data
from keras_adrec.data.read_stats import ReadStats
from keras_adrec.data.schema import AVAZU_SCHEMA
from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.schema import DatasetSchema
from keras_adrec.data.sequence_events import drop_cut_last_user
from keras_adrec.data.sequence_events import movielens_click_events
from keras_adrec.data.sequence_events import prepare_movielens_sequences
from keras_adrec.data.synthetic import CRITEO_KAGGLE_CARDINALITIES
from keras_adrec.data.synthetic import SyntheticCriteo
from keras_adrec.data.table import table_dataset
from keras_adrec.data.table_data import load_table_data
from keras_adrec.data.table_schema import SchemaFileError
from keras_adrec.data.table_schema import TableSchema
from keras_adrec.data.table_schema import load_table_schema
from keras_adrec.data.taobao import TaobaoSplit
from keras_adrec.data.taobao import prepare_taobao
from keras_adrec.data.taobao_events import BEHAVIORS
from keras_adrec.data.taobao_events import TaobaoEvents
from keras_adrec.data.taobao_events import read_taobao_events
from keras_adrec.data.taobao_points import NUM_BEHAVIOR_IDS
from keras_adrec.data.taobao_points import TaobaoPoints
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary

__all__ = [
    "resolve_files",
    "AVAZU_SCHEMA",
    "BEHAVIORS",
    "CRITEO_KAGGLE_CARDINALITIES",
    "CRITEO_SCHEMA",
    "NUM_BEHAVIOR_IDS",
    "SyntheticCriteo",
    "TaobaoEvents",
    "TaobaoPoints",
    "TaobaoSplit",
    "TaobaoVocabulary",
    "parquet_dataset",
    "prepare_taobao",
    "read_taobao_events",
    "drop_cut_last_user",
    "movielens_click_events",
    "prepare_movielens_sequences",
    "DataFormatError",
    "DatasetSchema",
    "FeaturePreprocessor",
    "DATA_KINDS",
    "DataKind",
    "RankingData",
    "data_kind",
    "kind_names",
    "load_ranking_data",
    "parse_data_spec",
    "ReadStats",
    "avazu_dataset",
    "count_vocabularies",
    "criteo_dataset",
    "make_dataset",
    "make_train_val_datasets",
    "preprocess",
    "raise_data_format_errors",
    "schema_for",
    "MultiHotLookup",
    "SchemaFileError",
    "TableSchema",
    "load_table_data",
    "load_table_schema",
    "preprocess_table",
    "table_dataset",
]
