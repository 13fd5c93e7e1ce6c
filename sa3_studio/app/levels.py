"""Output level of takes: the true peak the Takes panel shows and flags.

About 62 % of official renders go over 0 dBFS; a take's true peak (4x oversampled, ITU-R
BS.1770) says whether it clips on playback or after lossy encoding, which sample peaks miss.
Measured once per take audio (takes never change) and remembered by content id; a generated
take's peak is measured on the model thread and handed over, so the window does not stall on it.
"""

from __future__ import annotations

from collections import OrderedDict

from sa3_studio.audio.true_peak import DEFAULT_CEILING_DBTP, true_peak_dbtp
from sa3_studio.document.audio_data import AudioData

__all__ = ["CLIP_DBTP", "LIMIT_DBTP", "TruePeakMemo"]

CLIP_DBTP = 0.0
"""Above this the take clips (flagged)."""
LIMIT_DBTP = DEFAULT_CEILING_DBTP
"""Above this a limiter (or less gain) is advised before a lossy export."""


class TruePeakMemo:
    """True peaks of take audio, measured once each (a few hundred takes at most)."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._peaks: OrderedDict[str, float] = OrderedDict()

    def __call__(self, audio: AudioData) -> float:
        """The true peak of ``audio`` in dBTP."""
        key = audio.content_id
        peak = self._peaks.get(key)
        if peak is None:
            peak = true_peak_dbtp(audio.samples)
            self._peaks[key] = peak
            while len(self._peaks) > self._size:
                self._peaks.popitem(last=False)
        return peak

    def remember(self, audio: AudioData, peak_dbtp: float) -> None:
        """Keep a true peak measured elsewhere (on the model thread, as a take was made)."""
        self._peaks[audio.content_id] = peak_dbtp
        self._peaks.move_to_end(audio.content_id)
        while len(self._peaks) > self._size:
            self._peaks.popitem(last=False)
