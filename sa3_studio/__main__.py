"""``python -m sa3_studio``: the same as the ``sa3-studio`` command."""

from __future__ import annotations

import sys

from sa3_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
