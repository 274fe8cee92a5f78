"""Train TBSM's own DLRM-dot + TSL model on points exported by us.

Runs inside the virtual environment made by `setup_env.sh` (PyTorch CPU,
numpy, scikit-learn); it never imports keras_adrec. It imports the
unmodified `tbsm_pytorch.py` and `tbsm_data_pytorch.py` from a TBSM checkout
(and `dlrm_s_pytorch.py` from the DLRM checkout TBSM needs), reads the
points with TBSM's own `TBSMDataset` (from the `.npz` files written by
`export_points.py`, in TBSM's preprocessed layout), builds the model with
TBSM's `get_tbsm` and trains it with TBSM's `iterate_train_data` (Adagrad,
BCE loss, its learning rate), one call per epoch, as `train_tbsm` does.
Validation AUC is computed as TBSM's `test_tbsm` does (`roc_auc_score` of
the probabilities), over the exported validation points.

Two things differ from running `tbsm_pytorch.py` from the command line:
- TBSM's best-of-5 seed selection (`select`) is skipped, as with its
  `--no-select-seed` flag: each seed given is trained and reported.
- `torch.utils.tensorboard` is replaced by a stub module before TBSM is
  imported (only `SummaryWriter()` is constructed, never used without
  `--enable-summary`), so tensorboard need not be installed.

Usage (see README.md):
    python run_tbsm.py --tbsm TBSM_DIR --dlrm DLRM_DIR --points POINTS_DIR \
        --epochs 1 --seeds 0 1 2 --output result.json
"""

import argparse
import json
import os
import sys
import tempfile
import time
import types

import numpy as np


def _stub_tensorboard():
    module = types.ModuleType("torch.utils.tensorboard")

    class SummaryWriter:
        def __init__(self, *args, **kwargs):
            pass

        def add_scalars(self, *args, **kwargs):
            pass

        def close(self):
            pass

    module.SummaryWriter = SummaryWriter
    sys.modules["torch.utils.tensorboard"] = module


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tbsm", required=True, help="TBSM checkout")
    parser.add_argument("--dlrm", required=True, help="DLRM checkout")
    parser.add_argument("--points", required=True, help="export directory")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None)
    cli = parser.parse_args()

    import torch

    torch.set_num_threads(cli.threads)
    _stub_tensorboard()
    sys.path.insert(0, os.path.abspath(cli.tbsm))
    sys.path.insert(1, os.path.abspath(cli.dlrm))
    import dlrm_s_pytorch
    import tbsm_data_pytorch
    import tbsm_pytorch
    from sklearn.metrics import roc_auc_score

    meta = json.load(open(os.path.join(cli.points, "meta.json")))
    results = []
    for seed in cli.seeds:
        with tempfile.TemporaryDirectory() as scratch:
            args = argparse.Namespace(
                # tbsm_bench.sh's Taobao architecture
                datatype="taobao",
                mode="train",
                model_type="tsl",
                tsl_seq=False,
                tsl_proj=True,
                tsl_inner="def",
                tsl_num_heads=1,
                mha_num_heads=8,
                rnn_num_layers=5,
                tsl_interaction_op="dot",
                tsl_mechanism="mlp",
                arch_sparse_feature_size=16,
                arch_embedding_size="-".join(
                    str(size) for size in meta["vocabulary_sizes"]
                ),
                arch_mlp_bot="1-16",
                arch_mlp_top="15-15",
                tsl_mlp="15-15",
                arch_mlp="60-1",
                arch_interaction_op="dot",
                arch_interaction_itself=False,
                ts_length=meta["history_length"],
                points_per_user=10,
                numpy_rand_seed=seed,
                # data: the exported points, read by TBSMDataset
                raw_train_file=os.path.join(cli.points, "unused.txt"),
                pro_train_file=os.path.join(cli.points, "train.npz"),
                pro_val_file=os.path.join(cli.points, "val.npz"),
                pro_test_file=os.path.join(cli.points, "val.npz"),
                raw_test_file=os.path.join(cli.points, "unused.txt"),
                num_train_pts=meta["train_points"],
                num_val_pts=meta["val_points"],
                mini_batch_size=cli.batch_size,
                nepochs=cli.epochs,
                learning_rate=cli.learning_rate,
                num_batches=0,
                print_freq=10**9,
                test_freq=0,
                print_time=False,
                inference_only=False,
                enable_summary=False,
                enable_profiling=False,
                debug_mode=False,
                run_fast=False,
                save_model=os.path.join(scratch, "model.pt"),
                use_gpu=False,
                device_num=0,
                quality_metric="auc",
            )
            # tbsm_pytorch reads these module globals, set in its __main__.
            tbsm_pytorch.args = args
            tbsm_pytorch.dlrm = dlrm_s_pytorch
            tbsm_pytorch.set_seed(seed, False)
            torch.manual_seed(seed)
            train_ld, _ = tbsm_data_pytorch.make_tbsm_data_and_loader(
                args, "train"
            )
            val_ld, _ = tbsm_data_pytorch.make_tbsm_data_and_loader(args, "val")
            tbsm, device = tbsm_pytorch.get_tbsm(args, False)
            start = time.time()
            curve = []
            for epoch in range(args.nepochs):
                tbsm_pytorch.iterate_train_data(
                    args,
                    train_ld,
                    val_ld,
                    tbsm,
                    epoch,
                    False,
                    device,
                    None,
                    None,
                    None,
                    True,
                )
                curve.append(_auc(tbsm, val_ld, roc_auc_score))
            seconds = time.time() - start
        print(f"seed {seed}: val AUC per epoch {curve}", flush=True)
        results.append({"seed": seed, "val_auc": curve, "seconds": seconds})
    final = [run["val_auc"][-1] for run in results]
    summary = {
        "implementation": "facebookresearch/tbsm (PyTorch)",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "epochs": cli.epochs,
        "learning_rate": cli.learning_rate,
        "batch_size": cli.batch_size,
        "runs": results,
        "mean": float(np.mean(final)),
        "std": float(np.std(final, ddof=1)) if len(final) > 1 else None,
    }
    print(json.dumps(summary, indent=2))
    if cli.output:
        with open(cli.output, "w") as handle:
            json.dump(summary, handle, indent=2)


def _auc(tbsm, loader, roc_auc_score):
    """Validation AUC computed as TBSM's `test_tbsm` computes it."""
    import torch

    scores, labels = [], []
    with torch.no_grad():
        for X, lS_o, lS_i, T in loader:
            scores.append(tbsm(X, lS_o, lS_i).numpy()[:, 0])
            labels.append(T.numpy()[:, 0])
    return float(
        roc_auc_score(
            np.concatenate(labels).astype(int), np.concatenate(scores)
        )
    )


if __name__ == "__main__":
    main()
