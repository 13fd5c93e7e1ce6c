"""Headless commands behind the ``sa3-studio`` CLI (no Qt)."""

from __future__ import annotations

import argparse

from sa3_studio.errors import Sa3Error


def run(args: argparse.Namespace) -> int:
    """Run the subcommand in ``args``; returns the process exit code."""
    raise Sa3Error(
        f"`sa3-studio {args.command}` is not available in this build yet; "
        "use the editor window (`sa3-studio`)."
    )
