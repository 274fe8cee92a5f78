#!/usr/bin/env bash
# RM1 on Criteo: depth against heads (paper Table 6), everything else at
# the preset's values.
# Usage: tuning/rm1_depth.sh criteo:PATH OUTPUT_DIR [adrec tune options]
set -euo pipefail
data=${1:?usage: $0 criteo:PATH OUTPUT_DIR [options]}
out=${2:?usage: $0 criteo:PATH OUTPUT_DIR [options]}
shift 2
exec adrec tune --data "$data" --preset rm1 --tuner random \
    --max-trials 12 --epochs 1 --output "$out" \
    --range 'num_layers=[1, 2, 4]' --range 'num_heads=[1, 2, 4, 8]' \
    --fix ffn_dim=128 --fix dropout=0.01 --fix activation=relu \
    --fix norm_first=true "$@"
