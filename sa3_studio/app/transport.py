"""Transport: play, pause, stop, loop and follow, on top of the audio Player.

The Player's callback runs on the audio thread and only copies prepared frames; this object
lives on the GUI thread, prepares the mix when the project changed, and polls the Player's
position with a QTimer to move the session's playhead. A missing output device is a state
(``available`` is False, with a sentence for the status bar), never an exception for the user.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, QTimer, Signal

from sa3_studio.app.session import Session
from sa3_studio.audio.player import NO_DEVICE_MESSAGE, Player, PlayerState, Source
from sa3_studio.errors import PlaybackError

log = logging.getLogger(__name__)

POLL_MS = 25
"""Playhead refresh interval while playing (40 times a second)."""

AudioProvider = Callable[[], tuple[npt.NDArray[np.float32], int]]
"""Returns ``(audio (channels, frames), sample_rate)`` of what to play (the current mix)."""


class TransportState(enum.StrEnum):
    """What the transport buttons show."""

    UNAVAILABLE = "unavailable"
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


class Transport(QObject):
    """Play/pause/stop/loop/follow for the window, and take auditioning for the generate panel.

    Args:
        player: the audio Player (its backend is the stream factory; tests pass a manual one).
        session: view state: cursor, selection and the playhead this object moves.
        parent: Qt parent.

    Signals:
        state_changed(state): a :class:`TransportState` value.
        availability_changed(message): an output device appeared ("") or vanished (a sentence
            for the status bar).
        error(message): playback failed; the message says what to do.
        source_changed(): the A/B switch moved (see :meth:`take_audible`).

    No signal here carries a ``bool``: PySide6 6.12 on CPython 3.11 loses a reference to
    ``True`` each time Python emits it through a signal, which crashes the interpreter at exit.
    """

    state_changed = Signal(str)
    availability_changed = Signal(str)
    error = Signal(str)
    source_changed = Signal()

    def __init__(self, player: Player, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player = player
        self._session = session
        self._provider: AudioProvider | None = None
        self._stale = True
        self._loop = False
        self._follow = True
        self._state = TransportState.STOPPED
        self._available: bool | None = None
        self._started_at = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        session.selection_changed.connect(self._on_selection_changed)

    # -- setup ---------------------------------------------------------------------------------

    @property
    def player(self) -> Player:
        """The underlying Player."""
        return self._player

    def set_audio_provider(self, provider: AudioProvider | None) -> None:
        """Where the audio to play comes from (rendered lazily, when playback needs it)."""
        self._provider = provider
        self.invalidate()

    def invalidate(self) -> None:
        """The project changed: reload the mix now if playing, otherwise before the next play."""
        self._stale = True
        if self._state in (TransportState.PLAYING, TransportState.PAUSED):
            try:
                self._load()
            except PlaybackError as exc:
                self.error.emit(str(exc))

    def check_devices(self, rescan: bool = False) -> bool:
        """Look at the output devices; emits :attr:`availability_changed` on a change."""
        devices = self._player.refresh_devices() if rescan else self._player.output_devices()
        available = bool(devices)
        if available != self._available:
            self._available = available
            self.availability_changed.emit("" if available else NO_DEVICE_MESSAGE)
            self._set_state(TransportState.STOPPED if available else TransportState.UNAVAILABLE)
        return available

    @property
    def available(self) -> bool:
        """True when an output device exists (as of the last check)."""
        if self._available is None:
            return self.check_devices()
        return self._available

    @property
    def known_available(self) -> bool:
        """Like :attr:`available` but never queries the devices (True until checked)."""
        return True if self._available is None else self._available

    def output_device_names(self) -> list[str]:
        """Names of the output devices present."""
        return [d.name for d in self._player.output_devices()]

    def set_output_device(self, name: str) -> None:
        """Play through the device called ``name`` ("" = the system default).

        Emits :attr:`error` (and keeps the previous device) when it cannot be used.
        """
        try:
            self._player.set_device(name or None)
        except PlaybackError as exc:
            self.error.emit(str(exc))

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> TransportState:
        """The transport state."""
        return self._state

    @property
    def is_playing(self) -> bool:
        """True while audio plays."""
        return self._state is TransportState.PLAYING

    @property
    def loop_enabled(self) -> bool:
        """Whether the selection loops."""
        return self._loop

    @property
    def follow(self) -> bool:
        """Whether the view scrolls with the playhead."""
        return self._follow

    def set_follow(self, on: bool) -> None:
        """Scroll the view to keep the playhead visible."""
        self._follow = bool(on)

    def set_loop_enabled(self, on: bool) -> None:
        """Repeat the selection while playing."""
        self._loop = bool(on)
        self._apply_loop()

    # -- commands ------------------------------------------------------------------------------

    def play_pause(self) -> None:
        """Space bar: pause while playing, resume while paused, otherwise play.

        Playing from stopped plays the selection when there is one (looping it when loop is
        on), otherwise from the edit cursor to the end.
        """
        if self._state is TransportState.PLAYING:
            self._player.pause()
            self._set_state(TransportState.PAUSED)
            self._poll()
            return
        if self._state is TransportState.PAUSED:
            self._guard(self._player.resume)
            return
        bounds = self._session.selection_bounds()
        if bounds is not None and bounds[1] > bounds[0]:
            self._start(bounds[0], None if self._loop else bounds[1])
        else:
            self._start(self._session.cursor, None)

    def play_from_cursor(self) -> None:
        """Play from the edit cursor to the end (restarting if already playing)."""
        self._start(self._session.cursor, None)

    def play_range(self, start: int, end: int) -> None:
        """Play ``[start, end)`` once."""
        self._start(start, end)

    def stop(self) -> None:
        """Stop; the playhead returns to where playback started."""
        if self._state in (TransportState.PLAYING, TransportState.PAUSED):
            self._player.stop()
            self._player.clear_loop()
        self._timer.stop()
        self._session.set_playhead(self._player.position)
        if self._state is not TransportState.UNAVAILABLE:
            self._set_state(TransportState.STOPPED)

    def seek(self, frame: int) -> None:
        """Move the playhead (playback jumps there while playing)."""
        if self._state in (TransportState.PLAYING, TransportState.PAUSED):
            self._player.seek(frame)
        self._session.set_playhead(frame)

    # -- takes (the generation workflow) ------------------------------------------------------

    def audition_take(
        self,
        audio: npt.NDArray[np.float32],
        start: int,
        *,
        pre_roll_s: float = 2.0,
        post_roll_s: float = 1.0,
        loop: bool = False,
    ) -> None:
        """Play a take in place: the song before it, the take, the song after it.

        Args:
            audio: the take, ``(channels, frames)`` at the project rate.
            start: project frame where the take begins.
            pre_roll_s: seconds of song before the take.
            post_roll_s: seconds of song after it.
            loop: repeat the whole span until stopped.
        """
        try:
            self._load_if_stale()
            self._player.set_take(audio, start)
            self._started_at = max(start - round(pre_roll_s * self._player.sample_rate), 0)
            self._player.play_in_context(
                start,
                start + int(audio.shape[-1]),
                pre_roll_s=pre_roll_s,
                post_roll_s=post_roll_s,
                source=Source.TAKE,
                loop=loop,
            )
        except (PlaybackError, ValueError) as exc:
            self._report(exc)
            return
        self.source_changed.emit()
        self._started()

    def set_take_audible(self, take: bool) -> None:
        """The A/B switch: hear the take (True) or the original (False), seamlessly."""
        try:
            self._player.select(Source.TAKE if take else Source.ORIGINAL)
        except PlaybackError as exc:
            self.error.emit(str(exc))
            return
        self.source_changed.emit()

    def take_audible(self) -> bool:
        """True while the take version plays."""
        return self._player.source is Source.TAKE

    def clear_take(self) -> None:
        """Forget the auditioned take (the original plays on)."""
        self._player.clear_take()
        self.source_changed.emit()

    def shutdown(self) -> None:
        """Stop and release the audio device (call when the window closes)."""
        self._timer.stop()
        self._player.close()

    # -- internals -----------------------------------------------------------------------------

    def _load(self) -> None:
        if self._provider is None:
            raise PlaybackError("Nothing is loaded to play; open an audio file first.")
        audio, rate = self._provider()
        if audio.shape[-1] == 0:
            raise PlaybackError("The song is empty; open or paste some audio first.")
        self._player.load(audio, rate)
        self._stale = False

    def _load_if_stale(self) -> None:
        if self._stale:
            self._load()

    def _start(self, start: int, end: int | None) -> None:
        try:
            self._load_if_stale()
            self._player.clear_take()
            length = self._player.length
            start = max(0, min(start, length))
            if start >= length:
                start = 0
            self._player.play(start, end)
            self._started_at = start
        except (PlaybackError, ValueError) as exc:
            self._report(exc)
            return
        self._apply_loop()
        self._started()

    def _started(self) -> None:
        self._set_state(TransportState.PLAYING)
        self._timer.start()
        self._poll()

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except PlaybackError as exc:
            self._report(exc)
            return
        self._started()

    def _report(self, exc: Exception) -> None:
        log.info("playback failed: %s", exc)
        if not self._player.available:
            self.check_devices()
        self.error.emit(str(exc))

    def _apply_loop(self) -> None:
        if self._player.length == 0:
            return
        bounds = self._session.selection_bounds()
        if self._loop and bounds is not None and bounds[1] > bounds[0]:
            try:
                self._player.set_loop(bounds[0], min(bounds[1], self._player.length))
            except (PlaybackError, ValueError) as exc:
                log.debug("cannot loop the selection: %s", exc)
        else:
            self._player.clear_loop()

    def _on_selection_changed(self) -> None:
        if self._loop and self._state is TransportState.PLAYING:
            self._apply_loop()

    def _set_state(self, state: TransportState) -> None:
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state.value)

    def _poll(self) -> None:
        pos = self._player.position
        if self._state is TransportState.PLAYING:
            # Show what is heard now, not what was just handed to the device.
            latency = round(self._player.output_latency_s * max(self._player.sample_rate, 1))
            heard = pos - latency
            if heard < self._started_at <= pos:
                heard = self._started_at  # the first sound has not reached the speakers yet
            pos = max(heard, 0)
        self._session.set_playhead(pos)
        pstate = self._player.state
        if pstate is PlayerState.STOPPED and self._state is TransportState.PLAYING:
            # Ran to the end of its range.
            self._timer.stop()
            self._set_state(TransportState.STOPPED)
            return
        if self._follow and self._state is TransportState.PLAYING:
            self._session.ensure_visible(pos / max(self._session.sample_rate, 1))
