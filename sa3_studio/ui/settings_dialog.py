"""The settings dialog: models folder, compute device and precision, the engine (this computer
or a server), audio output, crossfade, theme and autosave. It edits a
:class:`~sa3_studio.app.settings.Preferences` value."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.settings import COMPUTE_DEVICES, PRECISIONS, Preferences

SYSTEM_DEFAULT = "System default"

_DEVICE_LABELS = {
    "auto": "Automatic (best available)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (Metal)",
}
_PRECISION_LABELS = {
    "auto": "Automatic",
    "float32": "32-bit float (most exact)",
    "bfloat16": "bfloat16 (fast on recent GPUs and on CPUs with AMX or AVX512-BF16)",
    "float16": "16-bit float",
}


class SettingsDialog(QDialog):
    """Edit the preferences; :meth:`preferences` returns what the user chose.

    Args:
        prefs: the current preferences.
        output_devices: names of the audio outputs present now (may be empty).
        parent: parent window.
        test_server: ``(url, token) -> (reachable, sentence)`` run by the Engine tab's Test
            button (default: ask the server for its models).
    """

    def __init__(
        self,
        prefs: Preferences,
        output_devices: Sequence[str] = (),
        parent: QWidget | None = None,
        test_server: Callable[[str, str], tuple[bool, str]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.setMinimumWidth(520)
        self._prefs = prefs
        tabs = QTabWidget(self)

        # Models
        models = QWidget()
        form = QFormLayout(models)
        self.models_folder = QLineEdit(prefs.models_folder)
        self.models_folder.setPlaceholderText("Default places (per-user folder, cache)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_models)
        row = QHBoxLayout()
        row.addWidget(self.models_folder, 1)
        row.addWidget(browse)
        form.addRow("Models folder:", row)
        self.compute_device = QComboBox()
        for key in COMPUTE_DEVICES:
            self.compute_device.addItem(_DEVICE_LABELS.get(key, key), key)
        if self.compute_device.findData(prefs.compute_device) < 0:
            self.compute_device.addItem(prefs.compute_device, prefs.compute_device)
        self.compute_device.setCurrentIndex(self.compute_device.findData(prefs.compute_device))
        form.addRow("Compute device:", self.compute_device)
        self.precision = QComboBox()
        for key in PRECISIONS:
            self.precision.addItem(_PRECISION_LABELS.get(key, key), key)
        self.precision.setCurrentIndex(max(self.precision.findData(prefs.precision), 0))
        form.addRow("Precision:", self.precision)
        hint = QLabel("Device and precision apply the next time a model is loaded.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        form.addRow("", hint)
        tabs.addTab(models, "Models")
        tabs.addTab(self._engine_tab(prefs, test_server), "Engine")

        # Audio
        audio = QWidget()
        aform = QFormLayout(audio)
        self.output_device = QComboBox()
        self.output_device.addItem(SYSTEM_DEFAULT, "")
        for name in output_devices:
            self.output_device.addItem(name, name)
        if prefs.output_device and self.output_device.findData(prefs.output_device) < 0:
            self.output_device.addItem(
                f"{prefs.output_device} (not connected)", prefs.output_device
            )
        self.output_device.setCurrentIndex(max(self.output_device.findData(prefs.output_device), 0))
        aform.addRow("Output device:", self.output_device)
        if not output_devices:
            none = QLabel("No audio output device was found. Editing and export still work.")
            none.setObjectName("warning")
            none.setWordWrap(True)
            aform.addRow("", none)
        self.crossfade = QDoubleSpinBox()
        self.crossfade.setRange(0.0, 1000.0)
        self.crossfade.setDecimals(1)
        self.crossfade.setSuffix(" ms")
        self.crossfade.setValue(prefs.crossfade_ms)
        self.crossfade.setToolTip("Length of the crossfade at the edges of an accepted take")
        aform.addRow("Take crossfade:", self.crossfade)
        tabs.addTab(audio, "Audio")

        # Appearance and project
        general = QWidget()
        gform = QFormLayout(general)
        self.theme = QComboBox()
        self.theme.addItem("Dark", "dark")
        self.theme.addItem("Light", "light")
        self.theme.setCurrentIndex(max(self.theme.findData(prefs.theme), 0))
        gform.addRow("Theme:", self.theme)
        # Autosave writes every change as it is made; the stored number is only on (>0) or off.
        self.autosave = QCheckBox("Save every change to the recovery file as it is made")
        self.autosave.setChecked(prefs.autosave_seconds > 0)
        gform.addRow("Autosave:", self.autosave)
        tabs.addTab(general, "General")

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(lambda: self._load(Preferences()))
        lay = QVBoxLayout(self)
        lay.addWidget(tabs)
        lay.addWidget(buttons)
        self.tabs = tabs

    def _engine_tab(
        self, prefs: Preferences, test_server: Callable[[str, str], tuple[bool, str]] | None
    ) -> QWidget:
        """Where models run: this computer, or an SA3 Studio server (URL, token, Test)."""
        if test_server is None:
            from sa3_studio.app.remote_engine import describe_server

            test_server = describe_server
        self._test_server = test_server
        page = QWidget()
        eform = QFormLayout(page)
        self.engine_local = QRadioButton("This computer")
        self.engine_server = QRadioButton("Server")
        choice = QHBoxLayout()
        choice.addWidget(self.engine_local)
        choice.addWidget(self.engine_server)
        choice.addStretch(1)
        eform.addRow("Generate on:", choice)
        self.server_url = QLineEdit(prefs.server_url)
        self.server_url.setPlaceholderText("http://gpu-box:8000")
        eform.addRow("Server address:", self.server_url)
        self.server_token = QLineEdit(prefs.server_token)
        self.server_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_token.setPlaceholderText("the token from the file `sa3-studio serve` printed")
        eform.addRow("Token:", self.server_token)
        self.test_button = QPushButton("Test")
        self.test_button.clicked.connect(self._test_connection)
        self.server_status = QLabel("")
        self.server_status.setObjectName("hint")
        self.server_status.setWordWrap(True)
        self.server_status.setTextInteractionFlags(
            self.server_status.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse
        )
        eform.addRow(self.test_button, self.server_status)
        hint = QLabel(
            "With a server, the Generate panel lists the server's models and the work runs "
            "there; editing stays here. Start one with `sa3-studio serve` on the GPU machine."
        )
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        eform.addRow("", hint)
        self.engine_server.toggled.connect(self._engine_changed)
        (self.engine_server if prefs.engine == "server" else self.engine_local).setChecked(True)
        self._engine_changed()
        return page

    def _engine_changed(self) -> None:
        on = self.engine_server.isChecked()
        for w in (self.server_url, self.server_token, self.test_button):
            w.setEnabled(on)

    def _test_connection(self) -> None:
        """Ask the server for its models and say what came back (bounded by a timeout)."""
        self.server_status.setText("Connecting…")
        self.server_status.repaint()
        ok, text = self._test_server(self.server_url.text().strip(), self.server_token.text())
        self.server_status.setObjectName("hint" if ok else "warning")
        self.server_status.setText(text)
        self.server_status.style().unpolish(self.server_status)
        self.server_status.style().polish(self.server_status)

    def _browse_models(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Models folder", self.models_folder.text() or ""
        )
        if folder:
            self.models_folder.setText(folder)

    def _load(self, prefs: Preferences) -> None:
        self.models_folder.setText(prefs.models_folder)
        self.compute_device.setCurrentIndex(
            max(self.compute_device.findData(prefs.compute_device), 0)
        )
        self.precision.setCurrentIndex(max(self.precision.findData(prefs.precision), 0))
        self.output_device.setCurrentIndex(max(self.output_device.findData(prefs.output_device), 0))
        self.crossfade.setValue(prefs.crossfade_ms)
        self.theme.setCurrentIndex(max(self.theme.findData(prefs.theme), 0))
        self.autosave.setChecked(prefs.autosave_seconds > 0)
        (self.engine_server if prefs.engine == "server" else self.engine_local).setChecked(True)
        self.server_url.setText(prefs.server_url)
        self.server_token.setText(prefs.server_token)

    def preferences(self) -> Preferences:
        """The preferences as the dialog shows them now."""
        return Preferences(
            models_folder=self.models_folder.text().strip(),
            compute_device=str(self.compute_device.currentData()),
            precision=str(self.precision.currentData()),
            output_device=str(self.output_device.currentData() or ""),
            crossfade_ms=float(self.crossfade.value()),
            theme=str(self.theme.currentData()),
            autosave_seconds=(
                (self._prefs.autosave_seconds or Preferences().autosave_seconds)
                if self.autosave.isChecked()
                else 0
            ),
            engine="server" if self.engine_server.isChecked() else "local",
            server_url=self.server_url.text().strip(),
            server_token=self.server_token.text().strip(),
        )
