#!/usr/bin/env bash
# RM1 on Criteo: the Ad-Rec hyperparameters of the paper's study (appendix
# D.4 and D.6), random search, exact validation AUC.
# Usage: tuning/rm1_criteo.sh criteo:PATH OUTPUT_DIR [adrec tune options]
set -euo pipefail
data=${1:?usage: $0 criteo:PATH OUTPUT_DIR [options]}
out=${2:?usage: $0 criteo:PATH OUTPUT_DIR [options]}
shift 2
exec adrec tune --data "$data" --preset rm1 --tuner random \
    --max-trials 20 --epochs 1 --output "$out" \
    --range dropout=0.01:0.1 \
    --range 'mask_thresholds=["geometric", "fixed:0.01", "none"]' \
    --baseline "$@"
