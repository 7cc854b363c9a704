"""``python -m impact_assets``: see :mod:`impact_assets.cli`."""

import sys

from impact_assets.cli import main

sys.exit(main())
