"""Entry point of the packaged SA3 Studio (the ``sa3-studio`` executable in the app folder).

It is the same command as ``sa3-studio`` from a source install: no argument or a file opens the
editor, a subcommand runs headless. ``SA3_PACKAGE_SELFCHECK=1`` runs the package self-check
instead (see ``sa3_package_selfcheck``), which proves that the bundled libraries load.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def main() -> int:
    """Run SA3 Studio, or the package self-check when SA3_PACKAGE_SELFCHECK is set."""
    # A frozen program must call this before anything else, so that a child process started by
    # multiprocessing (e.g. a torch DataLoader worker) runs its task instead of a second editor.
    multiprocessing.freeze_support()
    if os.environ.get("SA3_PACKAGE_SELFCHECK"):
        from sa3_package_selfcheck import run_selfcheck

        return run_selfcheck(sys.argv[1:])
    from sa3_studio.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
