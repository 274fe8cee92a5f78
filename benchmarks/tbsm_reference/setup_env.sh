#!/usr/bin/env bash
# Create the PyTorch environment of the TBSM reference runner.
#
# Usage: benchmarks/tbsm_reference/setup_env.sh VENV_DIR
#
# Installs torch, numpy, scikit-learn and tqdm (imported by DLRM's data
# module) from PyPI into a new virtual environment. keras_adrec does not
# depend on any of them; nothing here is installed into its environment.
set -euo pipefail
venv="${1:?usage: setup_env.sh VENV_DIR}"
python -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install torch numpy scikit-learn tqdm
"$venv/bin/python" -c "import torch, numpy, sklearn; print('torch', torch.__version__, 'numpy', numpy.__version__, 'scikit-learn', sklearn.__version__)"
