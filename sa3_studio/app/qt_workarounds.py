"""Workarounds for bugs in the Qt bindings, applied once by the composition root.

PySide6 6.12.0 on CPython 3.11 drops one reference to ``True`` every time Python code emits a
signal (any signal, with or without arguments; 6.11 does not). ``True`` is a static singleton,
so once its count reaches zero the interpreter aborts with "bool_dealloc: deallocating True or
False" -- after a few thousand emits, which pyqtgraph alone makes in a minute of mouse moves.
CPython 3.12 made ``True`` immortal, which is exactly the cure: :func:`guard_true_refcount`
gives it a count no program can spend. The real fix is a PySide6 release without the bug.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_IMMORTAL = 1 << 40
_PROBE_EMITS = 16


class _Probe(QObject):
    ping = Signal()


def emit_loses_true() -> bool:
    """True when emitting a signal from Python loses a reference to ``True`` (the bug)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.ping.emit()
    after = sys.getrefcount(True)
    probe.deleteLater()
    return before - after >= _PROBE_EMITS // 2


def guard_true_refcount() -> bool:
    """Make ``True`` as good as immortal when the bindings lose references to it.

    Does nothing on CPython 3.12+ (already immortal), on other interpreters, or when the
    bindings do not have the bug.

    Returns:
        True when the guard was applied.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not emit_loses_true():
        return False
    # ob_refcnt is the first field of every CPython object and id() is its address.
    refcnt = ctypes.c_ssize_t.from_address(id(True))
    if refcnt.value < _IMMORTAL:
        refcnt.value += _IMMORTAL
        log.info("PySide6 loses references to True on emit; applied the refcount guard")
    return True
