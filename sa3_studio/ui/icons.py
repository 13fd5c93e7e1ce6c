"""Line icons for the toolbars, drawn from small SVG sources on a 24×24 grid.

The sources use ``currentColor``; :func:`icon` fills in the theme's text colour, so the icons
follow the dark and light themes.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

_STROKE = (
    'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" '
    'stroke-linejoin="round"'
)

SOURCES: dict[str, str] = {
    "open": f'<path {_STROKE} d="M3 7h6l2 2h10v10H3z M3 7V5h6l2 2"/>',
    "save": f'<path {_STROKE} d="M5 3h11l3 3v15H5z M8 3v5h7V3 M8 21v-7h8v7"/>',
    "export": f'<path {_STROKE} d="M12 3v12 M7 8l5-5 5 5 M4 15v5h16v-5"/>',
    "undo": f'<path {_STROKE} d="M9 14L4 9l5-5 M4 9h10a6 6 0 0 1 0 12h-3"/>',
    "redo": f'<path {_STROKE} d="M15 14l5-5-5-5 M20 9H10a6 6 0 0 0 0 12h3"/>',
    "cut": (
        f'<circle {_STROKE} cx="6" cy="18" r="3"/><circle {_STROKE} cx="18" cy="18" r="3"/>'
        f'<path {_STROKE} d="M8 16L19 3 M16 16L5 3"/>'
    ),
    "copy": f'<path {_STROKE} d="M8 8h12v12H8z M4 16V4h12"/>',
    "paste": f'<path {_STROKE} d="M8 4h8v3H8z M6 5H4v16h16V5h-2"/>',
    "region": f'<path {_STROKE} d="M4 4v16 M20 4v16 M4 6h16v4H4z"/>',
    "zoom-in": (
        f'<circle {_STROKE} cx="10" cy="10" r="6"/>'
        f'<path {_STROKE} d="M20 20l-5.5-5.5 M7 10h6 M10 7v6"/>'
    ),
    "zoom-out": (
        f'<circle {_STROKE} cx="10" cy="10" r="6"/><path {_STROKE} d="M20 20l-5.5-5.5 M7 10h6"/>'
    ),
    "zoom-selection": (
        f'<path {_STROKE} d="M3 6v12 M21 6v12 M7 12h10 M10 9l-3 3 3 3 M14 9l3 3-3 3"/>'
    ),
    "zoom-fit": f'<path {_STROKE} d="M4 9V4h5 M20 9V4h-5 M4 15v5h5 M20 15v5h-5"/>',
    "spectrogram": (
        f'<path {_STROKE} d="M4 20V4 M4 20h16"/>'
        '<rect x="7" y="12" width="2.4" height="6" fill="currentColor"/>'
        '<rect x="11" y="7" width="2.4" height="11" fill="currentColor"/>'
        '<rect x="15" y="10" width="2.4" height="8" fill="currentColor"/>'
    ),
    "follow": f'<path {_STROKE} d="M12 3v18 M5 9l-3 3 3 3 M19 9l3 3-3 3"/>',
    "snap-latent": (
        f'<path {_STROKE} d="M4 20V8 M9 20V8 M14 20V8 M19 20V8"/>'
        '<path fill="currentColor" d="M7 3h4l-2 3z"/>'
    ),
    "snap-beats": (
        f'<path {_STROKE} d="M9 17V5l10-2v12"/>'
        f'<circle {_STROKE} cx="7" cy="17" r="2.5"/><circle {_STROKE} cx="17" cy="15" r="2.5"/>'
    ),
    "snap-zero": f'<path {_STROKE} d="M2 12h20 M3 12c2-7 5-7 6 0s4 7 6 0 4-7 6 0"/>',
    "play": (
        '<path fill="currentColor" d="M7 4.5v15a.8.8 0 0 0 1.2.7l12-7.5a.8.8 '
        '0 0 0 0-1.4l-12-7.5A.8.8 0 0 0 7 4.5z"/>'
    ),
    "pause": (
        '<rect x="6" y="4" width="4" height="16" rx="1" fill="currentColor"/>'
        '<rect x="14" y="4" width="4" height="16" rx="1" fill="currentColor"/>'
    ),
    "stop": '<rect x="5" y="5" width="14" height="14" rx="1.5" fill="currentColor"/>',
    "play-cursor": (f'<path {_STROKE} d="M4 3v18"/><path fill="currentColor" d="M9 6v12l10-6z"/>'),
    "loop": (
        f'<path {_STROKE} d="M17 2l4 4-4 4 M3 11V9a3 3 0 0 1 '
        '3-3h15 M7 22l-4-4 4-4 M21 13v2a3 3 0 0 1-3 3H3"/>'
    ),
    "to-start": f'<path {_STROKE} d="M5 5v14"/><path fill="currentColor" d="M19 5v14L8 12z"/>',
    "to-end": f'<path {_STROKE} d="M19 5v14"/><path fill="currentColor" d="M5 5v14l11-7z"/>',
    "record": '<circle cx="12" cy="12" r="7" fill="currentColor"/>',
}

SIZES = (16, 20, 24, 32, 48)


def svg_text(name: str, color: str) -> str:
    """The complete SVG document of icon ``name`` drawn in ``color``."""
    body = SOURCES[name].replace("currentColor", color)
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">{body}</svg>'


def _icon(name: str, color: str, disabled: str) -> QIcon:
    ic = QIcon()
    for mode, c in ((QIcon.Mode.Normal, color), (QIcon.Mode.Disabled, disabled)):
        renderer = QSvgRenderer(QByteArray(svg_text(name, c).encode("utf-8")))
        for size in SIZES:
            pm = QPixmap(size, size)
            pm.fill(Qt.GlobalColor.transparent)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            renderer.render(p, QRectF(0, 0, size, size))
            p.end()
            ic.addPixmap(pm, mode)
    return ic


def icon(name: str, color: QColor | str = "#cfd6dd", disabled: QColor | str = "#5b636c") -> QIcon:
    """Icon ``name`` in ``color`` (a null icon for an unknown name)."""
    if name not in SOURCES:
        return QIcon()
    c = color.name() if isinstance(color, QColor) else color
    d = disabled.name() if isinstance(disabled, QColor) else disabled
    return _icon(name, c, d)
