"""``python -m surgedesk``: the same as the ``surgedesk`` command."""

import sys

from surgedesk.cli import main

sys.exit(main())
