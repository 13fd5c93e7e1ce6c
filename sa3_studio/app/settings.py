"""User preferences and window state, persisted with QSettings.

The settings dialog edits a :class:`Preferences` value (a frozen dataclass, easy to compare and
test); :class:`AppSettings` reads and writes it and the smaller bits of view state (recent files,
snap toggles, window geometry) that are remembered between sessions.
"""

from __future__ import annotations

import dataclasses
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

MAX_RECENT_FILES = 10

THEMES = ("dark", "light")
COMPUTE_DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True, slots=True)
class Preferences:
    """What the settings dialog edits.

    Attributes:
        models_folder: extra folder searched for model weights ("" = the default places).
        compute_device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        precision: "auto", "float32", "bfloat16" or "float16".
        output_device: name of the audio output device ("" = the system default).
        crossfade_ms: length of the crossfade at the seams of an accepted take.
        theme: "dark" or "light".
        autosave_seconds: 0 turns autosave off; any other value autosaves every change as
            it is made (the number is what older versions waited; it is no longer used).
        engine: "local" (this computer) or "server" (an SA3 Studio server).
        server_url: the server's address, ``http(s)://HOST:PORT``.
        server_token: the server's bearer token (from the file ``sa3-studio serve`` made).
    """

    models_folder: str = ""
    compute_device: str = "auto"
    precision: str = "auto"
    output_device: str = ""
    crossfade_ms: float = 25.0
    theme: str = "dark"
    autosave_seconds: int = 3
    engine: str = "local"
    server_url: str = ""
    server_token: str = ""


@dataclass(frozen=True, slots=True)
class GenerationChoices:
    """The Generate panel's choices that are kept between sessions (per user).

    Attributes:
        model_path: folder of the chosen model ("" = the first one found).
        takes: takes made per region.
        loras: ``(file, strength)`` of the applied LoRAs, in order.
        prefix: the prompt's tag prefix ("" = the model's default).
        sampler: the sampler of -base models ("" = the default).
    """

    model_path: str = ""
    takes: int = 2
    loras: tuple[tuple[str, float], ...] = ()
    prefix: str = ""
    sampler: str = ""


def _to_bool(value: object, default: bool) -> bool:
    # QSettings' INI backend hands booleans back as the strings "true"/"false".
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, int):
        return bool(value)
    return default


def _to_float(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _to_int(value: object, default: int) -> int:
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _to_str_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return []


def saved_models_folder(store: QSettings | None = None) -> str:
    """The models folder chosen in the editor's settings ("" when none), for the command line:
    ``sa3-studio models list`` then searches the same places as the editor."""
    s = store if store is not None else QSettings("SA3 Studio", "SA3 Studio")
    return str(s.value("prefs/models_folder", "") or "")


class AppSettings(QObject):
    """Typed access to the application's QSettings.

    Args:
        store: the QSettings to use; tests pass one backed by a temporary INI file. ``None`` uses
            the platform's normal place for "SA3 Studio".
        parent: Qt parent.
    """

    preferences_changed = Signal(object)
    """Emitted with the new :class:`Preferences` after :meth:`set_preferences`."""
    recent_files_changed = Signal(list)

    def __init__(self, store: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store if store is not None else QSettings("SA3 Studio", "SA3 Studio")

    @property
    def store(self) -> QSettings:
        """The underlying QSettings."""
        return self._store

    # -- preferences -------------------------------------------------------------------------

    def preferences(self) -> Preferences:
        """The saved preferences; unknown or malformed values fall back to the defaults."""
        d = Preferences()
        s = self._store
        theme = str(s.value("prefs/theme", d.theme))
        device = str(s.value("prefs/compute_device", d.compute_device))
        precision = str(s.value("prefs/precision", d.precision))
        crossfade = _to_float(s.value("prefs/crossfade_ms", d.crossfade_ms), d.crossfade_ms)
        return Preferences(
            models_folder=str(s.value("prefs/models_folder", d.models_folder) or ""),
            compute_device=device if device else d.compute_device,
            precision=precision if precision in PRECISIONS else d.precision,
            output_device=str(s.value("prefs/output_device", d.output_device) or ""),
            crossfade_ms=min(max(crossfade, 0.0), 1000.0),
            theme=theme if theme in THEMES else d.theme,
            autosave_seconds=max(
                0,
                _to_int(s.value("prefs/autosave_seconds", d.autosave_seconds), d.autosave_seconds),
            ),
            engine="server" if str(s.value("prefs/engine", d.engine)) == "server" else "local",
            server_url=str(s.value("prefs/server_url", d.server_url) or "").strip(),
            server_token=str(s.value("prefs/server_token", d.server_token) or "").strip(),
        )

    def set_preferences(self, prefs: Preferences) -> None:
        """Save ``prefs`` and emit :attr:`preferences_changed` if anything changed."""
        old = self.preferences()
        for f in dataclasses.fields(prefs):
            self._store.setValue(f"prefs/{f.name}", getattr(prefs, f.name))
        self._store.sync()
        if prefs.server_token:
            self._keep_private()
        if prefs != old:
            self.preferences_changed.emit(prefs)

    def _keep_private(self) -> None:
        """Make the settings file readable by its owner only: it holds the server's token,
        which lets anyone who has it generate on that server. Best effort: a file system
        without POSIX modes (or a registry-backed store) keeps what it has."""
        if self._store.format() == QSettings.Format.NativeFormat and sys.platform != "linux":
            return  # the Windows registry and macOS preferences have their own protection
        path = Path(self._store.fileName())
        try:
            if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
        except OSError:
            pass

    # -- recent files --------------------------------------------------------------------------

    def recent_files(self) -> list[str]:
        """Most recent first; at most :data:`MAX_RECENT_FILES`."""
        return _to_str_list(self._store.value("recent_files", []))[:MAX_RECENT_FILES]

    def add_recent_file(self, path: str | Path) -> None:
        """Put ``path`` at the top of the recent files list."""
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self._set_recent(files[:MAX_RECENT_FILES])

    def remove_recent_file(self, path: str | Path) -> None:
        """Forget ``path`` (for example because it no longer exists)."""
        p = str(Path(path).resolve())
        self._set_recent([f for f in self.recent_files() if f != p])

    def clear_recent_files(self) -> None:
        """Forget every recent file."""
        self._set_recent([])

    def _set_recent(self, files: Sequence[str]) -> None:
        self._store.setValue("recent_files", list(files))
        self.recent_files_changed.emit(list(files))

    # -- small view state -------------------------------------------------------------------

    def flag(self, name: str, default: bool = False) -> bool:
        """A remembered on/off toggle (snap modes, follow playhead, spectrogram ...)."""
        return _to_bool(self._store.value(f"view/{name}", default), default)

    def set_flag(self, name: str, value: bool) -> None:
        """Remember an on/off toggle."""
        self._store.setValue(f"view/{name}", bool(value))

    def value(self, name: str, default: float) -> float:
        """A remembered number (for example the nudge step)."""
        return _to_float(self._store.value(f"view/{name}", default), default)

    def set_value(self, name: str, value: float) -> None:
        """Remember a number."""
        self._store.setValue(f"view/{name}", float(value))

    # -- the Generate panel's choices ----------------------------------------------------------

    def generation_choices(self) -> GenerationChoices:
        """The Generate panel's remembered choices (defaults where nothing valid is stored)."""
        s, d = self._store, GenerationChoices()
        paths = _to_str_list(s.value("generate/lora_paths", []))
        strengths = _to_str_list(s.value("generate/lora_strengths", []))
        loras = tuple(
            (path, _to_float(strengths[i] if i < len(strengths) else 1.0, 1.0))
            for i, path in enumerate(paths)
            if path
        )
        return GenerationChoices(
            model_path=str(s.value("generate/model_path", d.model_path) or ""),
            takes=min(max(_to_int(s.value("generate/takes", d.takes), d.takes), 1), 8),
            loras=loras,
            prefix=str(s.value("generate/prefix", d.prefix) or ""),
            sampler=str(s.value("generate/sampler", d.sampler) or ""),
        )

    def set_generation_choices(self, choices: GenerationChoices) -> None:
        """Remember the Generate panel's choices (written to disk at once)."""
        s = self._store
        s.setValue("generate/model_path", choices.model_path)
        s.setValue("generate/takes", int(choices.takes))
        s.setValue("generate/lora_paths", [path for path, _ in choices.loras])
        s.setValue("generate/lora_strengths", [f"{v:g}" for _, v in choices.loras])
        s.setValue("generate/prefix", choices.prefix)
        s.setValue("generate/sampler", choices.sampler)
        s.sync()

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        """The saved (geometry, dock/toolbar state) of the main window, if any."""
        geom = self._store.value("window/geometry")
        state = self._store.value("window/state")
        return (
            geom if isinstance(geom, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        """Remember the main window's geometry and dock layout."""
        self._store.setValue("window/geometry", geometry)
        self._store.setValue("window/state", state)

    def last_directory(self) -> str:
        """The folder of the last file dialog ("" = the home folder)."""
        return str(self._store.value("last_directory", "") or "")

    def set_last_directory(self, folder: str | Path) -> None:
        """Remember the folder of the last file dialog."""
        self._store.setValue("last_directory", str(folder))

    def sync(self) -> None:
        """Write everything to disk now."""
        self._store.sync()
