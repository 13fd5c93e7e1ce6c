"""Output level of takes: the true peak the Takes panel shows and flags.

About 62 % of official renders go over 0 dBFS; a take's true peak (4x oversampled, ITU-R
BS.1770) says whether it clips on playback or after lossy encoding, which sample peaks miss.
Measured once per take audio (takes never change) and remembered by content id. The window
never waits for a measurement it only shows: a generated take's peak is measured on the model
thread and handed over, and a take opened from a project is measured on a background thread
(:meth:`TruePeakMemo.soon`), about 0.3 s per 30 s take on a slow CPU.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque

from PySide6.QtCore import QObject, Signal

from sa3_studio.audio.true_peak import DEFAULT_CEILING_DBTP, true_peak_dbtp
from sa3_studio.document.audio_data import AudioData

__all__ = ["CLIP_DBTP", "LIMIT_DBTP", "TruePeakMemo"]

log = logging.getLogger(__name__)

CLIP_DBTP = 0.0
"""Above this the take clips (flagged)."""
LIMIT_DBTP = DEFAULT_CEILING_DBTP
"""Above this a limiter (or less gain) is advised before a lossy export."""


class TruePeakMemo(QObject):
    """True peaks of take audio, measured once each (a few hundred takes at most).

    Thread-safe: peaks are remembered from the model thread and from its own background thread.
    """

    measured = Signal()
    """A peak asked for with :meth:`soon` is known now (emitted from the background thread;
    slots of GUI objects run queued on the GUI thread)."""

    def __init__(self, size: int = 512, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._size = size
        self._lock = threading.Lock()
        self._peaks: OrderedDict[str, float] = OrderedDict()
        self._pending: set[str] = set()
        self._queue: deque[AudioData] = deque()
        self._worker: threading.Thread | None = None

    def __call__(self, audio: AudioData) -> float:
        """The true peak of ``audio`` in dBTP, measured now if it is not known."""
        peak = self.known(audio)
        if peak is None:
            peak = true_peak_dbtp(audio.samples)
            self.remember(audio, peak)
        return peak

    def known(self, audio: AudioData) -> float | None:
        """The true peak of ``audio`` if it has been measured, else None."""
        with self._lock:
            return self._peaks.get(audio.content_id)

    def soon(self, audio: AudioData) -> float | None:
        """The true peak if known; else None, and it is measured on a background thread
        (:attr:`measured` is emitted when it is known)."""
        peak = self.known(audio)
        if peak is not None:
            return peak
        key = audio.content_id
        with self._lock:
            if key in self._pending:
                return None
            self._pending.add(key)
            self._queue.append(audio)
            worker = None
            if self._worker is None:
                # One thread drains the queue and ends when it is empty.
                worker = self._worker = threading.Thread(
                    target=self._drain, name="true-peak", daemon=True
                )
        if worker is not None:
            worker.start()
        return None

    def remember(self, audio: AudioData, peak_dbtp: float) -> None:
        """Keep a true peak measured elsewhere (on the model thread, as a take was made)."""
        with self._lock:
            self._peaks[audio.content_id] = peak_dbtp
            self._peaks.move_to_end(audio.content_id)
            while len(self._peaks) > self._size:
                self._peaks.popitem(last=False)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                audio = self._queue.popleft()
            peak: float | None = None
            try:
                peak = true_peak_dbtp(audio.samples)
            except Exception:  # a failed measurement leaves the column empty, not the app
                log.exception("could not measure the true peak of take audio %s", audio.content_id)
            finally:
                with self._lock:
                    self._pending.discard(audio.content_id)
            if peak is not None:
                self.remember(audio, peak)
                try:
                    self.measured.emit()
                except RuntimeError:  # the memo's Qt object went (the window closed)
                    return
