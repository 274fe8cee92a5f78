#!/usr/bin/env bash
# Export our prepared Taobao points and train TBSM's DLRM-dot + TSL on them.
#
# Usage (from the repository root):
#   benchmarks/tbsm_reference/run.sh TBSM_DIR DLRM_DIR VENV_DIR WORK_DIR \
#       [EPOCHS] [SEEDS...]
#
# TBSM_DIR: a checkout of facebookresearch/tbsm; DLRM_DIR: a checkout of
# facebookresearch/dlrm (TBSM imports dlrm_s_pytorch from it, --dlrm-path);
# VENV_DIR: made by setup_env.sh; WORK_DIR: receives the points and
# tbsm_result_SEED.json. Neither checkout is modified. Set
# MAX_POINTS_PER_USER=N to keep each user's N latest windows per split
# (sequential_quality's --max-points-per-user).
set -euo pipefail
tbsm="${1:?TBSM_DIR}"; dlrm="${2:?DLRM_DIR}"; venv="${3:?VENV_DIR}"
work="${4:?WORK_DIR}"; epochs="${5:-2}"; shift $(( $# < 5 ? $# : 5 ))
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
    # The points of seed s are those sequential_quality trains seed s on
    # (prepare_taobao(seed=s): same windows and split, seed-s negatives).
    python -m benchmarks.tbsm_reference.export_points --seed "$seed" \
        ${MAX_POINTS_PER_USER:+--max-points-per-user "$MAX_POINTS_PER_USER"} \
        --output "$work/points_$seed"
    "$venv/bin/python" benchmarks/tbsm_reference/run_tbsm.py \
        --tbsm "$tbsm" --dlrm "$dlrm" --points "$work/points_$seed" \
        --epochs "$epochs" --seeds "$seed" \
        --output "$work/tbsm_result_$seed.json"
done
