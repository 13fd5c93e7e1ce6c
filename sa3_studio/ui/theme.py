"""Colours and the style sheet of the dark and light themes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from sa3_studio.ui.waveform import WaveformColors

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
"""The repository's resources folder (style sheets, icons)."""


@dataclass(frozen=True, slots=True)
class Theme:
    """Every colour the custom-drawn parts of the window use."""

    name: str
    window: QColor
    panel: QColor
    base: QColor
    text: QColor
    dim_text: QColor
    accent: QColor
    waveform: WaveformColors
    selection_fill: QColor
    selection_edge: QColor
    region_fill: QColor
    region_edge: QColor
    region_header: QColor
    region_header_selected: QColor
    region_text: QColor
    take_fill: QColor
    take_wave: QColor
    cursor: QColor
    playhead: QColor
    ruler_bg: QColor
    ruler_text: QColor
    ruler_tick: QColor
    overview_bg: QColor
    overview_wave: QColor
    overview_window: QColor
    grid: QColor


def _c(hexcode: str, alpha: int = 255) -> QColor:
    color = QColor(hexcode)
    color.setAlpha(alpha)
    return color


DARK = Theme(
    name="dark",
    window=_c("#1b1e23"),
    panel=_c("#23272e"),
    base=_c("#16191d"),
    text=_c("#d7dce2"),
    dim_text=_c("#8a939e"),
    accent=_c("#4fb3d9"),
    waveform=WaveformColors(
        fill=_c("#23708f"),
        rms=_c("#4fc0e6"),
        outline=_c("#8fdcf2"),
        centre=_c("#5a6e7d", 120),
        clip=_c("#f0594f"),
        lane_bg=_c("#15181c"),
        lane_sep=_c("#2c3138"),
        label=_c("#7d8894"),
    ),
    selection_fill=_c("#c9d6e3", 46),
    selection_edge=_c("#e6eef6", 200),
    region_fill=_c("#e0a33a", 28),
    region_edge=_c("#e0a33a", 210),
    region_header=_c("#6b5326"),
    region_header_selected=_c("#c98d27"),
    region_text=_c("#fbf1df"),
    take_fill=_c("#9b6cf0", 40),
    take_wave=_c("#b894ff", 220),
    cursor=_c("#f2f2f2", 200),
    playhead=_c("#ff6b57"),
    ruler_bg=_c("#1f2329"),
    ruler_text=_c("#aab3bd"),
    ruler_tick=_c("#59626c"),
    overview_bg=_c("#121417"),
    overview_wave=_c("#3b7f99"),
    overview_window=_c("#4fb3d9", 60),
    grid=_c("#2a3037"),
)

LIGHT = Theme(
    name="light",
    window=_c("#eceff3"),
    panel=_c("#f6f7f9"),
    base=_c("#ffffff"),
    text=_c("#1d232a"),
    dim_text=_c("#5d6873"),
    accent=_c("#1f7fae"),
    waveform=WaveformColors(
        fill=_c("#7fb6d6"),
        rms=_c("#2f86b5"),
        outline=_c("#1d6690"),
        centre=_c("#8aa0b0", 140),
        clip=_c("#d8362b"),
        lane_bg=_c("#fbfcfd"),
        lane_sep=_c("#d2d8de"),
        label=_c("#6a7682"),
    ),
    selection_fill=_c("#2f86b5", 40),
    selection_edge=_c("#1d6690", 200),
    region_fill=_c("#d18b12", 30),
    region_edge=_c("#c07b08", 220),
    region_header=_c("#f0d7a8"),
    region_header_selected=_c("#e0a33a"),
    region_text=_c("#2d2110"),
    take_fill=_c("#7b4fe0", 36),
    take_wave=_c("#6a3fd0", 220),
    cursor=_c("#20262c", 200),
    playhead=_c("#e0442f"),
    ruler_bg=_c("#e3e7ec"),
    ruler_text=_c("#38424c"),
    ruler_tick=_c("#8b96a1"),
    overview_bg=_c("#dde2e8"),
    overview_wave=_c("#5b95b8"),
    overview_window=_c("#1f7fae", 50),
    grid=_c("#e3e7ec"),
)


def theme_named(name: str) -> Theme:
    """The theme called ``name`` ("dark" or "light"; anything else gives dark)."""
    return LIGHT if name == "light" else DARK


def style_sheet(theme: Theme) -> str:
    """The Qt style sheet of ``theme`` (from resources/, with a built-in fallback)."""
    path = RESOURCES / f"style-{theme.name}.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.debug("style sheet %s not found; using the built-in palette only", path)
        return ""


def apply_theme(app: QApplication, theme: Theme) -> None:
    """Give the whole application ``theme``: Fusion style, palette and style sheet."""
    app.setStyle("Fusion")
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, theme.window)
    pal.setColor(role.WindowText, theme.text)
    pal.setColor(role.Base, theme.base)
    pal.setColor(role.AlternateBase, theme.panel)
    pal.setColor(role.ToolTipBase, theme.panel)
    pal.setColor(role.ToolTipText, theme.text)
    pal.setColor(role.Text, theme.text)
    pal.setColor(role.Button, theme.panel)
    pal.setColor(role.ButtonText, theme.text)
    pal.setColor(role.BrightText, QColor("#ffffff"))
    pal.setColor(role.Highlight, theme.accent)
    pal.setColor(
        role.HighlightedText, QColor("#0d1014") if theme.name == "dark" else QColor("#fff")
    )
    pal.setColor(role.Link, theme.accent)
    pal.setColor(role.PlaceholderText, theme.dim_text)
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, theme.dim_text)
    app.setPalette(pal)
    app.setStyleSheet(style_sheet(theme))
