#!/usr/bin/env bash
# RM3 on Avazu: the Ad-Rec hyperparameters with the released code's
# thresholds (0.001, 0.01) among the mask choices.
# Usage: tuning/rm3_avazu.sh avazu:PATH OUTPUT_DIR [adrec tune options]
set -euo pipefail
data=${1:?usage: $0 avazu:PATH OUTPUT_DIR [options]}
out=${2:?usage: $0 avazu:PATH OUTPUT_DIR [options]}
shift 2
exec adrec tune --data "$data" --preset rm3 --tuner random \
    --max-trials 20 --epochs 1 --output "$out" \
    --range dropout=0.01:0.1 \
    --range 'mask_thresholds=[[0.001, 0.01], "geometric", "fixed:0.01", "none"]' \
    --baseline "$@"
