"""The server's error type and how an exception becomes a message a client may see (no Ray)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ABS_PATH = re.compile(
    r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s'\"()\[\],;:]+[/\\])+([^\s'\"()\[\],;:]*)"
)


class ApiError(Exception):
    """An error answered to the client as ``{"error": {"code", "message"}}``.

    Attributes:
        status: the HTTP status.
        code: one of ``remote.wire.ERROR_CODES``.
        message: a sentence for the user (never a server path or a traceback).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def scrub(text: str, roots: Sequence[str] = ()) -> str:
    """``text`` without server paths: known roots and absolute paths become bare file names."""
    for root in sorted((r.rstrip("/\\") for r in roots if r), key=len, reverse=True):
        if root:
            text = text.replace(root + "/", "").replace(root, "<server folder>")
    return _ABS_PATH.sub(lambda m: m.group(1) or "<server path>", text)
