"""Jobs: what each `adrec` command runs, as plain Python functions.

One module per job, each named for what it runs; each job takes one
frozen settings dataclass defined beside it (`TrainRankingSettings`,
`TrainSequentialSettings`, `EvaluateSettings`, `CompareSettings`,
`ExportSettings`, `TuneSettings`), checked on creation, which the CLI
builds from its flags:

- `keras_adrec.jobs.train_ranking.train_ranking` and
  `keras_adrec.jobs.train_sequential.train_sequential` (`adrec train`);
- `keras_adrec.jobs.evaluate.evaluate` (`adrec evaluate`);
- `keras_adrec.jobs.compare.compare` (`adrec compare`);
- `keras_adrec.jobs.export.export_model` (`adrec export`);
- `keras_adrec.jobs.tune.tune` (`adrec tune`; needs the `tune` extra,
  keras-tuner).

The functions are not re-exported here, so that `keras_adrec.jobs.compare`
always names the module.
"""
