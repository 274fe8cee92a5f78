"""Names every export shares: signatures and the output tensor.

`serving_default` takes raw features (or raw events, for sequential
models), `serve_examples` serialized `tf.train.Example`s; each returns
`{"probability": float32 [batch, 1]}`.
"""

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "serve_examples"
OUTPUT_NAME = "probability"
