"""``python -m syncmsg``: the command line."""

import sys

from syncmsg.cli import main

sys.exit(main())
