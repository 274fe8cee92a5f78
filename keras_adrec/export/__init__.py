"""SavedModel export for TF Serving: raw features in, click probability out.

`export_for_serving(model_dir, export_dir, version=None)` writes
`export_dir/<version>/` of a ranking model with the signatures
`serving_default` (raw dense and categorical tensors) and `serve_examples`
(serialized `tf.train.Example`); see `keras_adrec.export.serving`.
`export_sequential_for_serving` does the same for a Taobao sequential
model, whose `serving_default` takes raw event histories; see
`keras_adrec.export.sequential_serving`. Each version carries TF Serving
warm-up records (`keras_adrec.export.warmup`). `export_onnx` writes an ONNX
model of either kind, whose inputs `OnnxInputMapper` makes from raw rows;
see `keras_adrec.export.onnx_export`.
"""

from keras_adrec.export.onnx_export import OnnxInputMapper
from keras_adrec.export.onnx_export import export_onnx
from keras_adrec.export.sequential_serving import (
    build_sequential_export_archive,
)
from keras_adrec.export.sequential_serving import export_sequential_for_serving
from keras_adrec.export.sequential_serving import raw_event_signature
from keras_adrec.export.serving import EXAMPLES_SIGNATURE
from keras_adrec.export.serving import OUTPUT_NAME
from keras_adrec.export.serving import SERVING_SIGNATURE
from keras_adrec.export.serving import build_export_archive
from keras_adrec.export.serving import example_feature_spec
from keras_adrec.export.serving import export_for_serving
from keras_adrec.export.serving import raw_input_signature
from keras_adrec.export.versions import next_version

__all__ = [
    "EXAMPLES_SIGNATURE",
    "OnnxInputMapper",
    "OUTPUT_NAME",
    "SERVING_SIGNATURE",
    "build_export_archive",
    "build_sequential_export_archive",
    "example_feature_spec",
    "export_for_serving",
    "export_onnx",
    "export_sequential_for_serving",
    "next_version",
    "raw_event_signature",
    "raw_input_signature",
]
