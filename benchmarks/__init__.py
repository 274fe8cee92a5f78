"""Benchmarks of keras_adrec, run from the repository root as
`python -m benchmarks.NAME` (quality, convergence, training_throughput,
input_pipeline, serving_latency); `benchmarks.report` holds what their
reports share. See benchmarks/README.md."""
