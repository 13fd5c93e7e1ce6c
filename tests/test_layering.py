"""Layering rules import-linter cannot express: app/ uses QtCore only (no widgets, no painting).

import-linter forbids whole external packages only, so this test reads every module of
``sa3_studio.app`` and fails on an import of ``PySide6.QtWidgets`` or ``PySide6.QtGui``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sa3_studio

FORBIDDEN_IN_APP = ("PySide6.QtWidgets", "PySide6.QtGui", "pyqtgraph")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_app_package_uses_qtcore_only() -> None:
    app = Path(sa3_studio.__file__).parent / "app"
    offenders = [
        f"{path.name}: {name}"
        for path in sorted(app.glob("*.py"))
        for name in _imports(path)
        if name.startswith(FORBIDDEN_IN_APP)
    ]
    assert not offenders, f"app/ must not import widgets or painting: {offenders}"
