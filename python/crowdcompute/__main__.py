"""`python -m crowdcompute worker ...`: see crowdcompute.cli."""

import sys

from .cli import main

sys.exit(main())
