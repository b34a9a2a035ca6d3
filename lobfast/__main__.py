"""``python -m lobfast``: the ``lobfast`` command (:mod:`lobfast.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
