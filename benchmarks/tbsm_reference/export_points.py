"""Write our prepared Taobao points in TBSM's preprocessed `.npz` layout.

Runs in the keras_adrec environment. `keras_adrec.data.prepare_taobao`
makes the points (windows, negatives, time split, vocabulary) exactly as
`keras_adrec.jobs.train_sequential.train_sequential` does for the same
seed and settings; this script writes them as TBSM's `TBSMDataset` reads
a preprocessed file: `X_cat` int32 `[3, N, T]` (user, item, category
indices, 0 = out of vocabulary), `X_int` float32 `[1, N, T]` (the time
feature), `y` float32 `[N]`. Embedding table sizes go to `meta.json`.

Usage:
    python -m benchmarks.tbsm_reference.export_points --output DIR \
        [--data PATH] [--seed 0] [--max-points-per-user N]
"""

import argparse
import json
import os

import numpy as np

from benchmarks.report import shared_data_dir
from keras_adrec import data as adrec_data


def export_points(output, path=None, seed=0, **preparation):
    """Prepare the points and write `train.npz`, `val.npz`, `meta.json`."""
    path = path or shared_data_dir() / "taobao" / "UserBehavior_head84k.csv"
    split = adrec_data.prepare_taobao(str(path), seed=seed, **preparation)
    os.makedirs(output, exist_ok=True)
    for name, points in (("train", split.train), ("val", split.validation)):
        np.savez_compressed(
            os.path.join(output, f"{name}.npz"),
            X_cat=np.transpose(points.sparse, (2, 0, 1)).astype(np.int32),
            X_int=np.transpose(points.dense, (2, 0, 1)).astype(np.float32),
            y=points.label[:, 0].astype(np.float32),
        )
    meta = {
        "data": os.path.basename(str(path)),
        "seed": seed,
        "preparation": preparation,
        "history_length": int(split.train.sequence_length - 1),
        "vocabulary_sizes": [int(s) for s in split.vocabulary.vocabulary_sizes],
        "train_points": len(split.train),
        "val_points": len(split.validation),
        "cut_time": int(split.cut_time),
    }
    with open(os.path.join(output, "meta.json"), "w") as handle:
        json.dump(meta, handle, indent=2)
    return meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-points-per-user", type=int, default=None)
    cli = parser.parse_args()
    preparation = {}
    if cli.max_points_per_user is not None:
        preparation["max_points_per_user"] = cli.max_points_per_user
    print(
        json.dumps(export_points(cli.output, cli.data, cli.seed, **preparation))
    )


if __name__ == "__main__":
    main()
