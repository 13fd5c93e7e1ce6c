"""Identifiers for tracks, clips, regions and takes.

Ids are short random strings with a readable prefix (``"region-3f9a0c2b1d4e"``). They are random
rather than counted so that an id made in one snapshot of the history can never clash with an id
made in another snapshot (a take is added to every snapshot, see ``History.amend_all``).
"""

from __future__ import annotations

import secrets
from collections.abc import Container

_RANDOM_BYTES = 6


def new_id(prefix: str, taken: Container[str] = ()) -> str:
    """Return a fresh id ``"<prefix>-<12 hex digits>"`` that is not in ``taken``.

    Args:
        prefix: what the id names ("track", "clip", "region", "take").
        taken: ids already in use.

    Returns:
        The new id.
    """
    while True:
        candidate = f"{prefix}-{secrets.token_hex(_RANDOM_BYTES)}"
        if candidate not in taken:
            return candidate
