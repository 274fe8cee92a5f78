"""`python -m keras_adrec.cli`: the `adrec` command."""

import sys

from keras_adrec.cli import main

sys.exit(main())
