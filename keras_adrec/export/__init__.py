"""SavedModel export for TF Serving: raw features in, click probability out.

`export_for_serving(model_dir, export_dir, version=None)` writes
`export_dir/<version>/` with the signatures `serving_default` (raw dense and
categorical tensors) and `serve_examples` (serialized `tf.train.Example`);
see `keras_adrec.export.serving`.
"""

from keras_adrec.export.serving import EXAMPLES_SIGNATURE
from keras_adrec.export.serving import OUTPUT_NAME
from keras_adrec.export.serving import SERVING_SIGNATURE
from keras_adrec.export.serving import build_export_archive
from keras_adrec.export.serving import example_feature_spec
from keras_adrec.export.serving import export_for_serving
from keras_adrec.export.serving import next_version
from keras_adrec.export.serving import raw_input_signature

__all__ = [
    "EXAMPLES_SIGNATURE",
    "OUTPUT_NAME",
    "SERVING_SIGNATURE",
    "build_export_archive",
    "example_feature_spec",
    "export_for_serving",
    "next_version",
    "raw_input_signature",
]
