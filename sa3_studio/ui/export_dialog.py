"""The export dialog: mix, selection, a region with handles, or stems; format, bit depth, rate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.export_request import (
    MP3_MODES,
    VORBIS_QUALITIES,
    ExportRequest,
    ExportWhat,
    FormatChoice,
)
from sa3_studio.ui.focus import wheel_only_when_focused

SAMPLE_RATES = (22050, 32000, 44100, 48000, 88200, 96000)

_VORBIS_KBPS = {3.0: 112, 5.0: 160, 6.0: 192, 8.0: 256, 10.0: 500}
"""Roughly what each Vorbis quality makes of stereo music at 44.1 kHz (oggenc's table)."""

_FORBIDDEN = '<>:"/\\|?*'
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)}


def safe_file_name(text: str) -> str:
    """``text`` as a file name every common system and DAW accepts.

    Times keep their digits ("1:59.64" becomes "1.59.64"), dashes become "-", characters
    Windows refuses and control characters go, runs of spaces shrink to one, and the name
    neither ends with a dot or space nor is a reserved device name ("CON", "COM1" ...).
    """
    out = []
    for ch in text.replace("–", "-").replace("—", "-"):
        if ch == ":":
            out.append(".")
        elif ch in _FORBIDDEN or ord(ch) < 32:
            out.append(" ")
        else:
            out.append(ch)
    name = " ".join("".join(out).split()).rstrip(" .")
    if not name or name.split(".")[0].upper() in _RESERVED:
        name = f"_{name}" if name else "export"
    return name


class ExportDialog(QDialog):
    """Choose what to export and how; :meth:`request` returns the choice.

    Args:
        formats: the formats this machine can write.
        regions: ``(region id, label)`` of the project's regions.
        has_selection: whether there is a time selection.
        selection: the selected spans in frames (copied into the request).
        project_rate: the project's sample rate.
        source_rate: the rate of the file the project came from (offered first).
        default_dir: folder proposed for the file.
        base_name: file name proposed (without extension).
        preselect_region: region chosen when the dialog opens.
        parent: parent window.
    """

    def __init__(
        self,
        formats: Sequence[FormatChoice],
        regions: Sequence[tuple[str, str]] = (),
        *,
        has_selection: bool = False,
        selection: Sequence[tuple[int, int]] = (),
        project_rate: int = 44100,
        source_rate: int | None = None,
        default_dir: str | Path = "",
        base_name: str = "export",
        preselect_region: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setObjectName("exportDialog")
        self.setMinimumWidth(560)
        self._formats = list(formats)
        self._selection = tuple(selection)
        self._base = base_name
        self._dir = Path(default_dir) if default_dir else Path.home()

        what_box = QGroupBox("Export")
        what_lay = QVBoxLayout(what_box)
        self.what_group = QButtonGroup(self)
        self.radio_mix = QRadioButton("The whole mix")
        self.radio_selection = QRadioButton("The selection")
        self.radio_region = QRadioButton("A region")
        self.radio_stems = QRadioButton("Stems (one file per track)")
        for i, r in enumerate(
            (self.radio_mix, self.radio_selection, self.radio_region, self.radio_stems)
        ):
            self.what_group.addButton(r, i)
        what_lay.addWidget(self.radio_mix)
        what_lay.addWidget(self.radio_selection)
        region_row = QHBoxLayout()
        region_row.addWidget(self.radio_region)
        self.region_combo = QComboBox()
        for rid, label in regions:
            self.region_combo.addItem(label, rid)
        region_row.addWidget(self.region_combo, 1)
        region_row.addWidget(QLabel("Handles:"))
        self.handles = QDoubleSpinBox()
        self.handles.setRange(0.0, 10000.0)
        self.handles.setDecimals(0)
        self.handles.setSingleStep(100.0)
        self.handles.setSuffix(" ms")
        self.handles.setToolTip("Extra audio before and after the region (for crossfades in a DAW)")
        region_row.addWidget(self.handles)
        what_lay.addLayout(region_row)
        what_lay.addWidget(self.radio_stems)
        self.radio_selection.setEnabled(has_selection)
        self.radio_region.setEnabled(bool(regions))
        self.region_combo.setEnabled(bool(regions))
        if preselect_region and self.region_combo.findData(preselect_region) >= 0:
            self.region_combo.setCurrentIndex(self.region_combo.findData(preselect_region))
            self.radio_region.setChecked(True)
        elif has_selection:
            self.radio_selection.setChecked(True)
        else:
            self.radio_mix.setChecked(True)

        fmt_box = QGroupBox("Format")
        form = QFormLayout(fmt_box)
        self.format_combo = QComboBox()
        for f in self._formats:
            self.format_combo.addItem(f.label, f.key)
        default = self.format_combo.findData("wav24")
        self.format_combo.setCurrentIndex(max(default, 0))
        form.addRow("Format:", self.format_combo)
        self.rate_combo = QComboBox()
        rates = list(SAMPLE_RATES)
        if source_rate and source_rate not in rates:
            rates.append(source_rate)
        for rate in sorted(rates):
            label = f"{rate} Hz"
            if rate == project_rate:
                label += " (project)"
            if source_rate and rate == source_rate and rate != project_rate:
                label += " (source file)"
            self.rate_combo.addItem(label, rate)
        self.rate_combo.setCurrentIndex(
            max(self.rate_combo.findData(source_rate or project_rate), 0)
        )
        form.addRow("Sample rate:", self.rate_combo)
        self.quality_combo = QComboBox()
        self.quality_combo.setObjectName("exportQuality")
        self.quality_combo.setToolTip("How much the lossy encoder may leave out (MP3 and OGG)")
        self.quality_label = QLabel("Quality:")
        form.addRow(self.quality_label, self.quality_combo)
        self.dither = QCheckBox("Dither when reducing to 16 bits")
        self.dither.setChecked(True)
        form.addRow("", self.dither)
        self.limit = QCheckBox("Limit true peaks to −1 dBTP (no clipping after encoding)")
        self.limit.setToolTip(
            "A look-ahead limiter turns down only the passages whose true peak (between "
            "samples, 4x oversampled) goes over −1 dBTP; everything else is written unchanged."
        )
        form.addRow("", self.limit)

        dest_box = QGroupBox("Destination")
        dest = QHBoxLayout(dest_box)
        self.path_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        dest.addWidget(self.path_edit, 1)
        dest.addWidget(browse)

        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(what_box)
        lay.addWidget(fmt_box)
        lay.addWidget(dest_box)
        lay.addWidget(self.summary)
        lay.addWidget(self.buttons)

        self.what_group.idToggled.connect(lambda *_: self._refresh())
        self.format_combo.currentIndexChanged.connect(lambda *_: self._fill_quality())
        self.format_combo.currentIndexChanged.connect(lambda *_: self._refresh())
        self.rate_combo.currentIndexChanged.connect(lambda *_: self._refresh())
        self.region_combo.currentIndexChanged.connect(lambda *_: self._refresh())
        self.path_edit.textChanged.connect(lambda *_: self._update_ok())
        self._fill_quality()
        self._refresh()
        wheel_only_when_focused(self)

    # -- state ---------------------------------------------------------------------------------

    def what(self) -> ExportWhat:
        """The chosen kind of export."""
        if self.radio_stems.isChecked():
            return ExportWhat.STEMS
        if self.radio_region.isChecked():
            return ExportWhat.REGION
        if self.radio_selection.isChecked():
            return ExportWhat.SELECTION
        return ExportWhat.MIX

    def _format(self) -> FormatChoice | None:
        key = self.format_combo.currentData()
        return next((f for f in self._formats if f.key == key), None)

    def _suggested_path(self) -> Path:
        fmt = self._format()
        ext = fmt.extension if fmt else "wav"
        what = self.what()
        if what is ExportWhat.STEMS:
            return self._dir / safe_file_name(f"{self._base} stems")
        name = self._base
        if what is ExportWhat.SELECTION:
            name += " (selection)"
        elif what is ExportWhat.REGION:
            name += f" - {self.region_combo.currentText()}"
        return self._dir / f"{safe_file_name(name)}.{ext}"

    def _refresh(self) -> None:
        is_region = self.what() is ExportWhat.REGION
        self.handles.setEnabled(is_region)
        fmt = self._format()
        current = self.path_edit.text().strip()
        # Follow the choices until the user typed a path of their own.
        if not current or current == getattr(self, "_last_suggested", ""):
            suggested = str(self._suggested_path())
            self.path_edit.setText(suggested)
            self._last_suggested = suggested
        elif fmt is not None and self.what() is not ExportWhat.STEMS:
            p = Path(current)
            if p.suffix.lower() != f".{fmt.extension}":
                self.path_edit.setText(str(p.with_suffix(f".{fmt.extension}")))
        rate = self.rate_combo.currentData()
        self.dither.setEnabled(bool(fmt and fmt.bits == 16))
        kind = {
            ExportWhat.MIX: "the whole mix",
            ExportWhat.SELECTION: "the selection",
            ExportWhat.REGION: "the region",
            ExportWhat.STEMS: "one file per track into the folder",
        }[self.what()]
        self.summary.setText(
            f"Writes {kind} as {fmt.label} at {rate} Hz."
            if fmt
            else "No export format is available on this machine."
        )
        self._update_ok()

    def _fill_quality(self) -> None:
        fmt = self._format()
        key = fmt.key if fmt is not None else ""
        self.quality_combo.clear()
        if key == "mp3":
            for mode, text in MP3_MODES.items():
                self.quality_combo.addItem(text, mode)
        elif key == "ogg":
            for q in VORBIS_QUALITIES:
                self.quality_combo.addItem(f"Quality {q:g} (about {_VORBIS_KBPS[q]} kbps)", q)
            self.quality_combo.setCurrentIndex(self.quality_combo.findData(6.0))
        lossy = self.quality_combo.count() > 0
        self.quality_combo.setVisible(lossy)
        self.quality_label.setVisible(lossy)

    def _update_ok(self) -> None:
        ok = bool(self.path_edit.text().strip()) and self._format() is not None
        if self.what() is ExportWhat.REGION:
            ok = ok and self.region_combo.count() > 0
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def _browse(self) -> None:
        if self.what() is ExportWhat.STEMS:
            folder = QFileDialog.getExistingDirectory(self, "Export stems to", str(self._dir))
            if folder:
                self.path_edit.setText(folder)
            return
        fmt = self._format()
        ext = fmt.extension if fmt else "wav"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export as", self.path_edit.text(), f"{ext.upper()} files (*.{ext})"
        )
        if path:
            self.path_edit.setText(path)

    def request(self) -> ExportRequest:
        """The export the dialog describes now."""
        fmt = self._format()
        what = self.what()
        return ExportRequest(
            what=what,
            path=Path(self.path_edit.text().strip()).expanduser(),
            format_key=fmt.key if fmt else "wav24",
            sample_rate=int(self.rate_combo.currentData()),
            dither=self.dither.isChecked(),
            region_id=str(self.region_combo.currentData() or "")
            if what is ExportWhat.REGION
            else "",
            handles_ms=float(self.handles.value()) if what is ExportWhat.REGION else 0.0,
            ranges=self._selection if what is ExportWhat.SELECTION else (),
            true_peak_limit_dbtp=-1.0 if self.limit.isChecked() else None,
            mp3_mode=str(self.quality_combo.currentData()) if fmt and fmt.key == "mp3" else "v0",
            vorbis_quality=float(self.quality_combo.currentData())
            if fmt and fmt.key == "ogg"
            else 6.0,
        )

    def set_what(self, what: ExportWhat) -> None:
        """Choose the kind of export (tests and the region context menu use this)."""
        {
            ExportWhat.MIX: self.radio_mix,
            ExportWhat.SELECTION: self.radio_selection,
            ExportWhat.REGION: self.radio_region,
            ExportWhat.STEMS: self.radio_stems,
        }[what].setChecked(True)
        self._refresh()
