"""Render resources/icons/sa3-studio.svg to the PNG sizes desktops look for (from the repo root).

Writes resources/icons/hicolor/NxN/apps/sa3-studio.png for N in 16 24 32 48 64 128 256 512, with
Qt's SVG renderer (the one the app uses), offscreen. Run it again after editing the SVG:

    QT_QPA_PLATFORM=offscreen python packaging/render_icons.py
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

log = logging.getLogger(__name__)


def render(svg: Path, out_root: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Render ``svg`` to ``out_root/NxN/apps/<stem>.png`` for each size; returns the paths."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG that Qt can draw")
    written = []
    for n in sizes:
        image = QImage(n, n, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        out = out_root / f"{n}x{n}" / "apps" / f"{svg.stem}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
        written.append(out)
    del app
    return written


def main() -> int:
    """Render the application icon; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    icons = Path("resources/icons")
    for path in render(icons / "sa3-studio.svg", icons / "hicolor"):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
