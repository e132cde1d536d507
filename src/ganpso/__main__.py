"""``python -m ganpso``: the same as the ``ganpso`` command."""

import sys

from ganpso.cli import main

sys.exit(main())
