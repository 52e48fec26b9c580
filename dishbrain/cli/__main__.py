"""`python -m dishbrain.cli`."""

import sys

from dishbrain.cli import main

sys.exit(main())
