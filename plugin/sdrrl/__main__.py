"""``python -m sdrrl``: the ``sdrrl`` command."""

import sys

from sdrrl.cli import main

sys.exit(main())
