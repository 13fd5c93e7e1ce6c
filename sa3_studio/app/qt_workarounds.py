"""Workarounds for bugs in the Qt bindings, applied once by the composition root.

PySide6 6.12.0 on CPython 3.11 loses references to the ``None`` and ``True`` singletons: one to
``None`` on every call of a Qt method that returns nothing (``QTimer.start``,
``QObject.setObjectName``, ``processEvents`` ...) and one to ``True`` on every signal that Python
emits (6.11.3 does neither). These objects are static, so when their count reaches zero the
interpreter aborts ("none_dealloc" / "bool_dealloc: deallocating ... a refcount error in a C
extension") -- after a few minutes of use, or at exit. CPython 3.12 made the singletons
immortal, which is exactly the cure: :func:`guard_refcounts` gives them a count no program can
spend. The real fix is a PySide6 release without the bug (pin ``PySide6-Essentials<6.12``).
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_IMMORTAL = 1 << 40
_PROBES = 16


class _Probe(QObject):
    ping = Signal()


def _loses(obj: object, action: Callable[[], object]) -> bool:
    before = sys.getrefcount(obj)
    for _ in range(_PROBES):
        action()
    return before - sys.getrefcount(obj) >= _PROBES // 2


def singletons_losing_references() -> list[str]:
    """Names of the singletons ("None", "True") the bindings lose references to."""
    probe = _Probe()
    lost: list[str] = []
    if _loses(None, lambda: probe.setObjectName("probe")):
        lost.append("None")
    if _loses(True, probe.ping.emit):
        lost.append("True")
    probe.deleteLater()
    return lost


def guard_refcounts() -> list[str]:
    """Make ``None``, ``True`` and ``False`` as good as immortal when the bindings lose
    references to them.

    Does nothing on CPython 3.12+ (already immortal), on other interpreters, or when the
    bindings do not have the bug.

    Returns:
        The names of the singletons that were losing references (empty: nothing applied).
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return []
    lost = singletons_losing_references()
    if not lost:
        return []
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object and id() is its address.
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        if refcnt.value < _IMMORTAL:
            refcnt.value += _IMMORTAL
    log.info("the Qt bindings lose references to %s; applied the refcount guard", ", ".join(lost))
    return lost
