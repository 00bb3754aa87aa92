"""`python -m livevis`: the same as the `livevis` command."""

import sys

from livevis.app.cli import main

sys.exit(main())
