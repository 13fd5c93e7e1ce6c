"""Playback of the project mix and of takes, with click-free A/B switching.

The :class:`Player` owns one output stream. Everything the audio thread needs is prepared on the
calling (GUI) thread and published as one immutable :class:`_Cue` by a single reference
assignment. The stream callback reads that reference once per block, copies frames from the
prepared buffers into ``outdata`` with numpy slicing and advances its counters. It never
allocates sample buffers, logs, locks, or calls back into the application; the only state it
writes is one tuple of counters (``_progress``), also by a single reference assignment.

Timeline and clock
    Positions are frames on the project timeline (what the playhead shows). The callback also
    counts a *clock*: frames it has rendered while audio was flowing. A transition (switching
    original and take, pausing, resuming, replacing the audio) is scheduled at a clock value a
    little ahead of the callback, and its crossfade is rendered in advance on the calling thread
    from exactly the frames that will be heard then, loop wrap-arounds included. The callback then
    only copies: the old source before the transition, the precomputed crossfade during it, the
    new source after it.

The backend is the stream factory: :class:`SoundDeviceBackend` (PortAudio through sounddevice) in
the application, :class:`ManualBackend` in tests and for offline rendering (the test calls
``stream.pull(frames)`` in place of the sound card).

The Player is not thread-safe: call it from one thread (the GUI thread). Only the callback runs
elsewhere.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from sa3_studio.errors import PlaybackError

_log = logging.getLogger(__name__)

FloatArray: TypeAlias = npt.NDArray[np.float32]

NO_DEVICE_MESSAGE = (
    "No audio output device was found. Editing and export still work; connect a device and "
    "choose it in Settings > Audio."
)
"""What the application shows while no output device exists (``PlayerStatus.message``)."""

StreamCallback: TypeAlias = Callable[[FloatArray, int, Any, Any], None]
"""``callback(outdata, frames, time_info, status)`` as PortAudio (sounddevice) calls it."""


# --------------------------------------------------------------------------------------------
# Devices and streams (the backend is the stream factory)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputDevice:
    """An audio output device.

    Attributes:
        index: the backend's device number (what :meth:`Player.set_device` accepts).
        name: the name to show and to remember in settings.
        host_api: the driver family ("ALSA", "Core Audio", "WASAPI", ...).
        channels: most output channels the device takes.
        default_samplerate: the device's preferred rate in Hz.
        is_default: True for the system's default output.
    """

    index: int
    name: str
    host_api: str = ""
    channels: int = 2
    default_samplerate: float = 44100.0
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What the Player asks of a stream: float32 frames, interleaved ``(frames, channels)``.

    Attributes:
        device: backend device index, or None for the system default.
        samplerate: frames per second.
        channels: output channels.
        blocksize: frames per callback.
    """

    device: int | None
    samplerate: int
    channels: int
    blocksize: int


class OutputStream(Protocol):
    """The part of a PortAudio-like output stream the Player uses."""

    def start(self) -> None:
        """Start calling the callback."""

    def stop(self) -> None:
        """Stop calling the callback once the queued blocks have played."""

    def close(self) -> None:
        """Release the device."""


class AudioBackend(Protocol):
    """Lists output devices and opens streams on them (the Player's stream factory)."""

    def output_devices(self) -> list[OutputDevice]:
        """Return the output devices present now (empty when there are none)."""

    def open_output(self, settings: StreamSettings, callback: StreamCallback) -> OutputStream:
        """Open a stopped output stream that will call ``callback``.

        Raises:
            PlaybackError: the device cannot be opened with these settings.
        """

    def rescan(self) -> None:
        """Look for devices plugged in or removed since the backend started."""


class SoundDeviceBackend:
    """The real backend: PortAudio through ``sounddevice``, imported on first use.

    A machine without the PortAudio library, or without any output device, simply has no
    devices: the Player reports :data:`NO_DEVICE_MESSAGE` instead of failing.
    """

    def __init__(self, *, latency: str | float = "high") -> None:
        """Create the backend.

        Args:
            latency: PortAudio's suggested output latency ("low", "high" or seconds). "high" is
                the safe choice for a Python callback sharing the interpreter with a GUI.
        """
        self._latency = latency
        self._open_streams = 0

    @staticmethod
    def _module() -> Any | None:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:  # no sounddevice, or no PortAudio library
            _log.warning("sounddevice is unavailable: %s", exc)
            return None
        return sounddevice

    def output_devices(self) -> list[OutputDevice]:
        """Return PortAudio's output devices (empty without PortAudio or without devices)."""
        sd = self._module()
        if sd is None:
            return []
        try:
            devices = sd.query_devices()
            host_apis = sd.query_hostapis()
            default_out = sd.default.device[1]
        except Exception as exc:  # PortAudio reports a broken audio system: treat as no device
            _log.warning("cannot list audio devices: %s", exc)
            return []
        if not isinstance(default_out, int) or default_out < 0:
            default_out = -1
        result: list[OutputDevice] = []
        for info in devices:
            channels = int(info["max_output_channels"])
            if channels <= 0:
                continue
            index = int(info["index"])
            result.append(
                OutputDevice(
                    index=index,
                    name=str(info["name"]),
                    host_api=str(host_apis[int(info["hostapi"])]["name"]),
                    channels=channels,
                    default_samplerate=float(info["default_samplerate"]),
                    is_default=index == default_out,
                )
            )
        return result

    def open_output(self, settings: StreamSettings, callback: StreamCallback) -> OutputStream:
        """Open a PortAudio float32 output stream (stopped)."""
        sd = self._module()
        if sd is None:
            raise PlaybackError(NO_DEVICE_MESSAGE)
        try:
            stream = sd.OutputStream(
                device=settings.device,
                samplerate=settings.samplerate,
                channels=settings.channels,
                dtype="float32",
                blocksize=settings.blocksize,
                latency=self._latency,
                callback=callback,
            )
        except Exception as exc:  # sounddevice raises PortAudioError or ValueError
            raise PlaybackError(
                f"The audio output could not be opened ({exc}). Choose another device in "
                "Settings > Audio, or check that no other program holds it."
            ) from exc
        self._open_streams += 1
        return _SoundDeviceStream(stream, self)

    def rescan(self) -> None:
        """Re-initialise PortAudio so that it sees devices plugged in since it started.

        Does nothing while one of this backend's streams is open (PortAudio cannot rescan then).
        """
        sd = self._module()
        if sd is None or self._open_streams:
            return
        sd._terminate()
        sd._initialize()

    def _stream_closed(self) -> None:
        self._open_streams = max(0, self._open_streams - 1)


class _SoundDeviceStream:
    """A sounddevice stream whose failures are PlaybackErrors."""

    def __init__(self, stream: Any, backend: SoundDeviceBackend) -> None:
        self._stream = stream
        self._backend = backend
        self._closed = False

    def start(self) -> None:
        try:
            self._stream.start()
        except Exception as exc:
            raise PlaybackError(
                f"The audio output could not be started ({exc}). Choose another device in "
                "Settings > Audio."
            ) from exc

    def stop(self) -> None:
        try:
            self._stream.stop()
        except Exception as exc:  # a vanished device: the stream is unusable anyway
            _log.warning("stopping the audio stream failed: %s", exc)

    @property
    def latency(self) -> float:
        """Seconds from the callback to the loudspeaker, as PortAudio reports it."""
        try:
            return float(self._stream.latency)
        except Exception:  # a closed or vanished stream
            return 0.0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.close()
        except Exception as exc:
            _log.warning("closing the audio stream failed: %s", exc)
        self._backend._stream_closed()


class ManualStream:
    """An output stream driven by the caller: each :meth:`pull` runs the callback once.

    Used by tests (no sound card, exact control of block boundaries) and for rendering what the
    Player would play into an array.
    """

    def __init__(self, settings: StreamSettings, callback: StreamCallback) -> None:
        self.settings = settings
        self._callback = callback
        self.active = False
        self.closed = False
        self.starts = 0
        self.latency = 0.0  # seconds; tests may set it

    def start(self) -> None:
        """Let :meth:`pull` run the callback."""
        if self.closed:
            raise PlaybackError("The audio stream was closed; open a new one to play.")
        self.active = True
        self.starts += 1

    def stop(self) -> None:
        """Stop running the callback (pull then returns silence)."""
        self.active = False

    def close(self) -> None:
        """Release the stream."""
        self.active = False
        self.closed = True

    def pull(self, frames: int | None = None, out: FloatArray | None = None) -> FloatArray:
        """Run the callback for one block, as the sound card would.

        Args:
            frames: block length (default: the stream's blocksize).
            out: a ``(frames, channels)`` float32 array to fill (allocated when None).

        Returns:
            The block (silence while the stream is stopped).
        """
        n = self.settings.blocksize if frames is None else int(frames)
        if out is None:
            out = np.empty((n, self.settings.channels), dtype=np.float32)
        if self.active:
            self._callback(out, n, None, None)
        else:
            out.fill(0.0)
        return out

    def render(self, frames: int, blocksize: int | None = None) -> FloatArray:
        """Pull ``frames`` frames in blocks and return them ``(frames, channels)``."""
        block = self.settings.blocksize if blocksize is None else int(blocksize)
        result = np.zeros((frames, self.settings.channels), dtype=np.float32)
        done = 0
        while done < frames:
            n = min(block, frames - done)
            self.pull(n, result[done : done + n])
            done += n
        return result


class ManualBackend:
    """A backend without a sound card: streams are :class:`ManualStream` objects.

    Attributes:
        devices: the devices it reports (empty: behaves like a machine without output).
        streams: every stream it opened, oldest first.
    """

    def __init__(self, devices: Sequence[OutputDevice] | None = None) -> None:
        """Create the backend.

        Args:
            devices: the devices to report; None gives one default stereo device.
        """
        if devices is None:
            devices = [OutputDevice(0, "Manual output", "Manual", 2, 44100.0, True)]
        self.devices = list(devices)
        self.streams: list[ManualStream] = []

    def output_devices(self) -> list[OutputDevice]:
        """Return the configured devices."""
        return list(self.devices)

    def open_output(self, settings: StreamSettings, callback: StreamCallback) -> ManualStream:
        """Open a manual stream (refused, like PortAudio, when there is no device)."""
        if not self.devices:
            raise PlaybackError(NO_DEVICE_MESSAGE)
        stream = ManualStream(settings, callback)
        self.streams.append(stream)
        return stream

    def rescan(self) -> None:
        """Nothing to rescan: the device list is what the caller set."""

    @property
    def stream(self) -> ManualStream:
        """The most recently opened stream."""
        if not self.streams:
            raise PlaybackError("No stream has been opened yet; call Player.play first.")
        return self.streams[-1]


# --------------------------------------------------------------------------------------------
# What the callback plays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    """Timeline frames ``[start, end)`` come from ``data[start - shift : end - shift]``."""

    start: int
    end: int
    data: FloatArray  # (frames, channels) view, read-only
    shift: int


Pieces: TypeAlias = tuple[_Piece, ...]


@dataclass(frozen=True, slots=True)
class _Seek:
    id: int
    frame: int


@dataclass(frozen=True, slots=True)
class _Fade:
    """A crossfade from ``prev`` to ``target`` over clock ``[at, at + len(data))``.

    ``data`` holds the rendered mix, ``(length, channels)``. ``None`` as a source is silence.
    """

    id: int
    at: int
    data: FloatArray = field(repr=False)
    prev: Pieces | None = field(repr=False)
    target: Pieces | None = field(repr=False)

    @property
    def length(self) -> int:
        return int(self.data.shape[0])


@dataclass(frozen=True, slots=True)
class _Cue:
    """Everything the callback reads, published by one reference assignment.

    ``target`` is what plays once every fade has passed (None: silence with the clock stopped,
    i.e. paused). ``fades`` are in clock order; the callback skips those it has finished.
    ``seek`` is applied once (by id). The loop ``(start, end)`` wraps the position when it
    reaches ``end`` from before it; without a loop (or past it) playback ends at ``end``.
    """

    target: Pieces | None
    fades: tuple[_Fade, ...]
    seek: _Seek | None
    end: int
    loop: tuple[int, int] | None


_EMPTY_CUE = _Cue(target=None, fades=(), seek=None, end=0, loop=None)


def _copy_pieces(pieces: Pieces, out: FloatArray, offset: int, pos: int, n: int) -> None:
    """Copy timeline frames ``[pos, pos + n)`` into ``out[offset : offset + n]``.

    Runs in the audio callback: slicing and assignment only.
    """
    stop = pos + n
    for p in pieces:
        if p.end <= pos:
            continue
        if p.start >= stop:
            break
        a = pos if pos > p.start else p.start
        b = stop if stop < p.end else p.end
        out[offset + a - pos : offset + b - pos] = p.data[a - p.shift : b - p.shift]


def _step_limit(pos: int, end: int, loop: tuple[int, int] | None) -> tuple[int, bool]:
    """Where the next run of frames stops, and whether it wraps to the loop start there."""
    if loop is not None and pos < loop[1]:
        return loop[1], True
    return end, False


def _render(
    pieces: Pieces | None, pos: int, n: int, end: int, loop: tuple[int, int] | None, channels: int
) -> FloatArray:
    """Render what ``pieces`` sound like for ``n`` frames from ``pos``, following the loop.

    Off the audio thread (it allocates). Frames after the end are silence.
    """
    out = np.zeros((n, channels), dtype=np.float32)  # (n, C)
    if pieces is None:
        return out
    done = 0
    while done < n:
        stop, wraps = _step_limit(pos, end, loop)
        if pos >= stop:
            break
        k = min(n - done, stop - pos)
        _copy_pieces(pieces, out, done, pos, k)
        done += k
        pos += k
        if wraps and pos == stop and loop is not None:
            pos = loop[0]
    return out


def _advance(pos: int, n: int, end: int, loop: tuple[int, int] | None) -> int:
    """The position after ``n`` more frames of playback from ``pos``."""
    while n > 0:
        stop, wraps = _step_limit(pos, end, loop)
        if pos >= stop:
            return pos
        k = min(n, stop - pos)
        pos += k
        n -= k
        if wraps and pos == stop and loop is not None:
            pos = loop[0]
    return pos


def _crossfade_curves(length: int) -> tuple[FloatArray, FloatArray]:
    """Raised-cosine fade-out and fade-in that sum to exactly one, ``(length, 1)`` each."""
    k = (np.arange(length, dtype=np.float64) + 0.5) / length
    fade_in = np.sin(0.5 * np.pi * k) ** 2
    up = fade_in.astype(np.float32).reshape(-1, 1)
    down = (1.0 - up).astype(np.float32)
    return down, up


# --------------------------------------------------------------------------------------------
# The Player
# --------------------------------------------------------------------------------------------


class Source(enum.Enum):
    """Which version of the audio plays."""

    ORIGINAL = "original"
    TAKE = "take"


class PlayerState(enum.Enum):
    """What the transport shows."""

    UNAVAILABLE = "unavailable"  # no output device; editing and export still work
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class PlayerStatus:
    """A snapshot for the GUI.

    Attributes:
        state: see :class:`PlayerState`.
        position: playhead in frames on the project timeline.
        source: original or take.
        message: a sentence for the user when something is wrong ("" when all is well).
        device_name: the chosen output device ("" for the system default or none).
    """

    state: PlayerState
    position: int
    source: Source
    message: str
    device_name: str


class Player:
    """Plays the project mix, ranges, loops and takes in context through one output stream.

    Audio is given as the document holds it: float32 ``(channels, frames)``. Positions are
    frames on the project timeline.
    """

    def __init__(
        self,
        backend: AudioBackend | None = None,
        *,
        blocksize: int = 512,
        crossfade_s: float = 0.010,
        transition_delay_s: float = 0.050,
    ) -> None:
        """Create a Player; it opens no device until :meth:`play`.

        Args:
            backend: the stream factory (default :class:`SoundDeviceBackend`).
            blocksize: frames per callback.
            crossfade_s: length of the crossfade when switching source, pausing or resuming.
            transition_delay_s: how far ahead of the audio thread a transition is scheduled, so
                that the thread cannot pass it before it is published. Also bounded below by
                four blocks.
        """
        if blocksize < 16:
            raise ValueError("blocksize must be at least 16 frames")
        if crossfade_s <= 0 or transition_delay_s < 0:
            raise ValueError("crossfade_s must be positive and transition_delay_s not negative")
        self._backend: AudioBackend = backend if backend is not None else SoundDeviceBackend()
        self._blocksize = int(blocksize)
        self._crossfade_s = float(crossfade_s)
        self._delay_s = float(transition_delay_s)
        self._device: int | None = None
        self._device_name = ""
        self._devices: list[OutputDevice] | None = None
        self._stream: OutputStream | None = None
        self._stream_key: tuple[int | None, int, int] | None = None
        self._running = False
        self._message = ""

        self._audio: FloatArray | None = None  # (frames, C) view of the (C, frames) input
        self._rate = 0
        self._take: tuple[FloatArray, int] | None = None  # ((frames, C) view, start)
        self._source = Source.ORIGINAL
        self._state = PlayerState.STOPPED
        self._finished = False  # playback ran to the end of its range (not stopped by the user)
        self._range = (0, 0)  # what play() covers: [start, end)
        self._loop: tuple[int, int] | None = None
        self._next_id = 1
        self._curves: tuple[FloatArray, FloatArray] | None = None

        # Written only by the callback (one tuple assignment): clock, position, last seek id
        # applied, last fade id finished.
        self._progress: tuple[int, int, int, int] = (0, 0, 0, 0)
        # Written only by this thread (one reference assignment).
        self._cue: _Cue = _EMPTY_CUE

    # ---------------------------------------------------------------- devices

    def output_devices(self) -> list[OutputDevice]:
        """Return the output devices (as of the last :meth:`refresh_devices` or :meth:`play`)."""
        if self._devices is None:
            self._devices = self._backend.output_devices()
        return list(self._devices)

    def refresh_devices(self) -> list[OutputDevice]:
        """Rescan for devices (when no stream is open) and return them."""
        if self._stream is None:
            self._backend.rescan()
        self._devices = None
        return self.output_devices()

    @property
    def available(self) -> bool:
        """True when at least one output device exists."""
        return bool(self.output_devices())

    @property
    def device(self) -> int | None:
        """The chosen device index (None: the system default)."""
        return self._device

    def set_device(self, device: int | str | None) -> None:
        """Choose the output device; playback moves to it (continuing if it was playing).

        Args:
            device: a device index, a device name (as in settings), or None / "" for the
                system default.

        Raises:
            PlaybackError: no such device, or the new device cannot be opened.
        """
        if device is None or device == "":
            index: int | None = None
            name = ""
        else:
            devices = self.output_devices()
            if not devices:
                raise PlaybackError(NO_DEVICE_MESSAGE)
            match = [
                d
                for d in devices
                if (d.index == device if isinstance(device, int) else d.name == device)
            ]
            if not match:
                raise PlaybackError(
                    f"The audio output device {device!r} is not connected. Choose another one "
                    "in Settings > Audio."
                )
            index, name = match[0].index, match[0].name
        if index == self._device and name == self._device_name:
            return
        self._device, self._device_name = index, name
        if self._stream is not None:
            was_running = self._running
            self._close_stream()
            if was_running:
                self._ensure_stream()
                self._start_stream()

    # ---------------------------------------------------------------- content

    @property
    def sample_rate(self) -> int:
        """Rate of the loaded audio (0 before :meth:`load`)."""
        return self._rate

    @property
    def length(self) -> int:
        """Frames of the loaded audio (0 before :meth:`load`)."""
        return 0 if self._audio is None else int(self._audio.shape[0])

    @property
    def source(self) -> Source:
        """Whether the original or the take plays."""
        return self._source

    @property
    def has_take(self) -> bool:
        """True while a take is set (see :meth:`set_take`)."""
        return self._take is not None

    def load(self, audio: npt.ArrayLike, sample_rate: int) -> None:
        """Set the audio to play (the project mix), replacing any take.

        While playing at the same rate and channel count, the new audio takes over with a
        crossfade and playback goes on from the same position; otherwise playback stops.

        Args:
            audio: float32 ``(channels, frames)`` (1-D is one channel). Kept by reference: it
                must not be modified afterwards (document buffers are read-only).
            sample_rate: frames per second.

        Raises:
            ValueError: the audio is empty or badly shaped, or the rate is not positive.
        """
        self._sync_state()
        data = _as_frames_major(audio)
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        same_format = (
            self._audio is not None
            and int(sample_rate) == self._rate
            and data.shape[1] == self._audio.shape[1]
        )
        if not same_format and self._state is not PlayerState.STOPPED:
            self.stop()
        if self._stream is not None and self._stream_key != self._wanted_key(
            int(sample_rate), data.shape[1]
        ):
            self._close_stream()
        old_length = self.length
        self._audio = data
        self._rate = int(sample_rate)
        self._curves = None
        self._take = None
        self._source = Source.ORIGINAL
        n = self.length
        if self._range == (0, old_length) or self._range[1] > n:
            self._range = (min(self._range[0], n), n)
        if self._loop is not None and self._loop[1] > n:
            self._loop = None
        if self._state is PlayerState.PLAYING:
            self._transition(self._pieces())
        else:
            self._publish(clamp_seek=True)

    def set_take(
        self, audio: npt.ArrayLike, start: int, *, edge_crossfade_s: float = 0.005
    ) -> None:
        """Set the take to compare with the original: ``audio`` sounds from frame ``start``.

        Outside ``[start, start + frames)`` the take version is the original, so pre-roll and
        post-roll come from the song. If the take version is playing, it changes with a
        crossfade.

        Args:
            audio: float32 ``(channels, frames)``, the take (or the take already spliced into its
                surroundings by the splice module; then pass ``edge_crossfade_s=0``).
            start: timeline frame of its first frame.
            edge_crossfade_s: crossfade between song and take at both edges, so that the
                boundaries do not click (shortened for short takes).

        Raises:
            PlaybackError: no audio is loaded.
            ValueError: the take does not fit in the loaded audio or has other channels.
        """
        self._sync_state()
        song = self._require_audio()
        take = _as_frames_major(audio)
        start = int(start)
        if start < 0 or start + take.shape[0] > song.shape[0]:
            raise ValueError(
                f"the take [{start}, {start + take.shape[0]}) does not fit in the "
                f"{song.shape[0]} frames of the loaded audio"
            )
        if take.shape[1] != song.shape[1]:
            raise ValueError(f"the take has {take.shape[1]} channels, the song {song.shape[1]}")
        k = min(round(edge_crossfade_s * self._rate), take.shape[0] // 2)
        if k > 0:
            down, up = _crossfade_curves(k)
            spliced = np.array(take, dtype=np.float32, order="C")  # (frames, C)
            end = start + take.shape[0]
            spliced[:k] = song[start : start + k] * down + take[:k] * up
            spliced[-k:] = take[-k:] * down + song[end - k : end] * up
            spliced.setflags(write=False)
            take = spliced
        self._take = (take, start)
        if self._source is Source.TAKE and self._state is PlayerState.PLAYING:
            self._transition(self._pieces())

    def clear_take(self) -> None:
        """Forget the take; if it was playing, the original takes over with a crossfade."""
        if self._take is None:
            return
        if self._source is Source.TAKE:
            self.select(Source.ORIGINAL)
        self._take = None

    def select(self, source: Source) -> None:
        """Switch between original and take; while playing, with a short crossfade.

        The switch is heard ``transition_delay_s`` plus the device latency after the call.

        Raises:
            PlaybackError: the take is asked for but none is set.
        """
        self._sync_state()
        if source is Source.TAKE and self._take is None:
            raise PlaybackError("There is no take to play yet; generate or choose a take first.")
        if source is self._source:
            return
        self._source = source
        if self._state is PlayerState.PLAYING:
            self._transition(self._pieces())

    # ---------------------------------------------------------------- transport

    def play(self, start: int | None = None, end: int | None = None) -> None:
        """Play from ``start`` (default: the playhead) until ``end`` (default: the end).

        From the paused state with no arguments this resumes. From the end of the range it
        starts over at the range start.

        Raises:
            PlaybackError: nothing is loaded, there is no output device, or it cannot be opened.
        """
        self._sync_state()
        song = self._require_audio()
        n = song.shape[0]
        if start is not None and end is not None and int(end) <= int(start):
            raise ValueError(f"cannot play the empty range [{start}, {end})")
        if start is None and end is None:
            if self._state is PlayerState.PAUSED:
                self.resume()
                return
            if self._state is PlayerState.PLAYING and not self._ended():
                return
            if self._finished:  # ran to the end: play the same range again
                start, end = self._range
        self._finished = False
        if start is None:
            pos = self.position
            range_start = self._range[0] if self._state is not PlayerState.STOPPED else pos
        else:
            pos = range_start = _clamp(int(start), 0, n)
        range_end = n if end is None else _clamp(int(end), 0, n)
        if range_end <= range_start:
            range_start = 0
        if pos >= range_end or pos < range_start:
            pos = range_start
        self._ensure_stream()
        self._range = (range_start, range_end)
        self._state = PlayerState.PLAYING
        self._publish(target=self._pieces(), fades=(), seek=pos)
        self._start_stream()

    def play_in_context(
        self,
        region_start: int,
        region_end: int,
        *,
        pre_roll_s: float = 2.0,
        post_roll_s: float = 1.0,
        source: Source = Source.TAKE,
        loop: bool = False,
    ) -> None:
        """Play a region with some of the song before and after it (to audition a take).

        Args:
            region_start: first frame of the region.
            region_end: frame after the region.
            pre_roll_s: seconds of song before the region.
            post_roll_s: seconds of song after the region.
            source: which version to start with; :meth:`select` switches while playing.
            loop: repeat the whole span (pre-roll, region, post-roll) until stopped.

        Raises:
            PlaybackError: as :meth:`play`, or ``source`` is TAKE and no take is set.
        """
        song = self._require_audio()
        if source is Source.TAKE and self._take is None:
            raise PlaybackError("There is no take to play yet; generate or choose a take first.")
        a = _clamp(int(region_start) - round(pre_roll_s * self._rate), 0, song.shape[0])
        b = _clamp(int(region_end) + round(post_roll_s * self._rate), 0, song.shape[0])
        if b <= a:
            raise ValueError("the region is empty")
        self._source = source
        self._loop = (a, b) if loop else None
        self.play(a, b)

    def pause(self) -> None:
        """Pause with a short fade-out; :meth:`resume` (or :meth:`play`) continues from there."""
        self._sync_state()
        if self._state is not PlayerState.PLAYING:
            return
        self._state = PlayerState.PAUSED
        self._transition(None)

    def resume(self) -> None:
        """Continue after :meth:`pause`, fading in where the fade-out ended."""
        self._sync_state()
        if self._state is not PlayerState.PAUSED:
            return
        self._state = PlayerState.PLAYING
        self._transition(self._pieces())

    def toggle(self) -> None:
        """Space bar: pause while playing, resume while paused, play while stopped."""
        self._sync_state()
        if self._state is PlayerState.PLAYING and not self._ended():
            self.pause()
        else:
            self.play()

    def stop(self) -> None:
        """Stop at once and put the playhead back where playback started."""
        if self._stream is not None and self._running:
            self._stream.stop()
        self._running = False
        self._state = PlayerState.STOPPED
        self._finished = False
        self._publish(target=None, fades=(), seek=self._range[0])

    def seek(self, frame: int) -> None:
        """Move the playhead; while playing, playback jumps there."""
        self._sync_state()
        self._finished = False
        n = self.length
        frame = _clamp(int(frame), 0, n)
        if self._state is not PlayerState.STOPPED and not (
            self._range[0] <= frame < self._range[1]
        ):
            self._range = (0, n)
        target = self._pieces() if self._state is PlayerState.PLAYING else None
        self._publish(target=target, fades=(), seek=frame)

    @property
    def loop(self) -> tuple[int, int] | None:
        """The loop range ``(start, end)``, or None."""
        return self._loop

    def set_loop(self, start: int, end: int) -> None:
        """Repeat ``[start, end)`` whenever playback reaches ``end`` from before it.

        Raises:
            PlaybackError: nothing is loaded.
            ValueError: the range is empty or outside the audio.
        """
        self._sync_state()
        n = self._require_audio().shape[0]
        start, end = int(start), int(end)
        if not 0 <= start < end <= n:
            raise ValueError(f"the loop [{start}, {end}) must be a non-empty span of [0, {n}]")
        self._loop = (start, end)
        self._publish()

    def clear_loop(self) -> None:
        """Stop looping (playback goes on to the end of the range)."""
        self._sync_state()
        self._loop = None
        self._publish()

    @property
    def position(self) -> int:
        """The playhead, in frames on the timeline (frames handed to the device so far).

        Safe to read at any time from the GUI thread (a timer polls it).
        """
        cue = self._cue
        _, pos, seek_done, _ = self._progress
        if cue.seek is not None and cue.seek.id > seek_done:
            return cue.seek.frame
        return pos

    @property
    def output_latency_s(self) -> float:
        """Seconds between :attr:`position` and what is heard (0 when unknown or closed).

        The playhead may subtract ``output_latency_s * sample_rate`` frames while playing.
        """
        return float(getattr(self._stream, "latency", 0.0) or 0.0)

    @property
    def state(self) -> PlayerState:
        """The transport state (STOPPED once playback ran to the end of its range)."""
        if not self.available:
            return PlayerState.UNAVAILABLE
        if self._state is PlayerState.PLAYING and self._ended():
            return PlayerState.STOPPED
        return self._state

    @property
    def status(self) -> PlayerStatus:
        """State, playhead, source and a message for the user."""
        state = self.state
        message = NO_DEVICE_MESSAGE if state is PlayerState.UNAVAILABLE else self._message
        return PlayerStatus(state, self.position, self._source, message, self._device_name)

    def close(self) -> None:
        """Stop and release the device (the Player can play again later)."""
        self.stop()
        self._close_stream()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _require_audio(self) -> FloatArray:
        if self._audio is None:
            raise PlaybackError("Nothing is loaded to play; open or record some audio first.")
        return self._audio

    def _pieces(self) -> Pieces:
        song = self._require_audio()
        n = song.shape[0]
        if self._source is Source.ORIGINAL or self._take is None:
            return (_Piece(0, n, song, 0),)
        take, a = self._take
        b = a + take.shape[0]
        pieces = []
        if a > 0:
            pieces.append(_Piece(0, a, song, 0))
        pieces.append(_Piece(a, b, take, a))
        if b < n:
            pieces.append(_Piece(b, n, song, 0))
        return tuple(pieces)

    def _out_channels(self, channels: int) -> int:
        # Mono plays on both sides of a stereo device (numpy broadcasts (n, 1) into (n, 2)).
        return max(2, channels)

    def _wanted_key(self, rate: int, channels: int) -> tuple[int | None, int, int]:
        return (self._device, rate, self._out_channels(channels))

    def _ensure_stream(self) -> None:
        song = self._require_audio()
        key = self._wanted_key(self._rate, song.shape[1])
        if self._stream is not None and self._stream_key == key:
            return
        self._close_stream()
        self._devices = None  # a device may have come or gone since the last look
        if not self.output_devices():
            self._message = NO_DEVICE_MESSAGE
            raise PlaybackError(NO_DEVICE_MESSAGE)
        settings = StreamSettings(self._device, self._rate, key[2], self._blocksize)
        try:
            self._stream = self._backend.open_output(settings, self._callback)
        except PlaybackError as exc:
            self._message = str(exc)
            raise
        self._stream_key = key
        self._message = ""
        _log.info("opened audio output %r at %d Hz", self._device_name or "default", self._rate)

    def _start_stream(self) -> None:
        if self._stream is None or self._running:
            return
        try:
            self._stream.start()
        except PlaybackError as exc:
            self._message = str(exc)
            self._state = PlayerState.STOPPED
            raise
        self._running = True

    def _close_stream(self) -> None:
        stream, self._stream, self._stream_key = self._stream, None, None
        if stream is not None:
            if self._running:
                stream.stop()
            stream.close()
        self._running = False

    def _fade_frames(self) -> int:
        return max(1, round(self._crossfade_s * max(self._rate, 1)))

    def _delay_frames(self) -> int:
        return max(4 * self._blocksize, round(self._delay_s * max(self._rate, 1)))

    def _ended(self) -> bool:
        cue = self._cue
        _, pos, seek_done, _ = self._progress
        if cue.seek is not None and cue.seek.id > seek_done:
            return False
        if cue.loop is not None and pos < cue.loop[1]:
            return False
        return pos >= cue.end

    def _sync_state(self) -> None:
        """Playback that ran to the end of its range is stopped (the stream idles silently)."""
        if self._state is PlayerState.PLAYING and self._ended():
            self._state = PlayerState.STOPPED
            self._finished = True
            self._publish(target=None, fades=())

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    _KEEP: Any = object()

    def _publish(
        self,
        *,
        target: Any = _KEEP,
        fades: Any = _KEEP,
        seek: int | None = None,
        clamp_seek: bool = False,
    ) -> None:
        """Build a new cue from the current settings and hand it to the callback."""
        old = self._cue
        fade_done = self._progress[3]
        n = self.length
        new_seek = old.seek
        if seek is not None:
            new_seek = _Seek(self._new_id(), _clamp(seek, 0, n))
        elif clamp_seek:
            new_seek = _Seek(self._new_id(), _clamp(self.position, 0, n))
        self._cue = _Cue(
            target=old.target if target is self._KEEP else target,
            fades=tuple(f for f in old.fades if f.id > fade_done) if fades is self._KEEP else fades,
            seek=new_seek,
            end=self._range[1],
            loop=self._loop,
        )

    def _transition(self, target: Pieces | None) -> None:
        """Change what plays, with a crossfade rendered here, ahead of the audio thread."""
        cue = self._cue
        clock, pos, seek_done, fade_done = self._progress
        pending = tuple(f for f in cue.fades if f.id > fade_done)
        seek_pending = cue.seek is not None and cue.seek.id > seek_done
        if not self._running or seek_pending or self._ended():
            # No audio flows, or a jump is about to happen anyway: switch at once.
            self._publish(target=target, fades=())
            return
        current = pending[-1].target if pending else cue.target
        if pending and pending[-1].target is None:
            # The clock stops when the pause fade ends: start exactly there.
            at = pending[-1].at + pending[-1].length
        elif not pending and cue.target is None:
            at = clock  # paused: the clock waits here
        else:
            at = clock + self._delay_frames()
            if pending:
                at = max(at, pending[-1].at + pending[-1].length)
        start = _advance(pos, at - clock, cue.end, cue.loop)
        length = self._fade_frames()
        channels = self._out_channels(self._require_audio().shape[1])
        if self._curves is None or self._curves[0].shape[0] != length:
            self._curves = _crossfade_curves(length)
        down, up = self._curves
        old = _render(current, start, length, cue.end, cue.loop, channels)  # (L, C)
        new = _render(target, start, length, cue.end, cue.loop, channels)  # (L, C)
        mixed = old * down + new * up
        mixed.setflags(write=False)
        fade = _Fade(self._new_id(), at, mixed, current, target)
        self._publish(target=target, fades=(*pending, fade))

    def _callback(self, outdata: FloatArray, frames: int, time_info: Any, status: Any) -> None:
        """The audio thread: copy prepared frames into ``outdata`` and advance the counters.

        Only slicing, copying and integer arithmetic: no sample buffers are allocated, nothing
        is logged or locked.
        """
        cue = self._cue
        clock, pos, seek_done, fade_done = self._progress
        seek = cue.seek
        if seek is not None and seek.id > seek_done:
            pos = seek.frame
            seek_done = seek.id
        fades = cue.fades
        loop = cue.loop
        o = 0
        while o < frames:
            fade = None
            for f in fades:
                if f.id > fade_done:
                    fade = f
                    break
            if fade is not None and clock >= fade.at + fade.data.shape[0]:
                fade_done = fade.id  # finished (or, if published late, skipped)
                continue
            limit = frames - o
            if fade is None:
                source = cue.target
                if source is None:  # paused: silence, the clock and the playhead wait
                    break
            elif clock < fade.at:
                source = fade.prev
                limit = min(limit, fade.at - clock)
            else:
                source = None
                limit = min(limit, fade.at + fade.data.shape[0] - clock)
            stop, wraps = _step_limit(pos, cue.end, loop)
            if pos >= stop:
                break  # the end of the range: silence from here
            n = min(limit, stop - pos)
            if fade is not None and clock >= fade.at:
                k = clock - fade.at
                outdata[o : o + n] = fade.data[k : k + n]
            elif source is None:
                outdata[o : o + n] = 0.0
            else:
                _copy_pieces(source, outdata, o, pos, n)
            o += n
            pos += n
            clock += n
            if wraps and pos == stop and loop is not None:
                pos = loop[0]
        if o < frames:
            outdata[o:] = 0.0
        self._progress = (clock, pos, seek_done, fade_done)


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else high if value > high else value


def _as_frames_major(audio: npt.ArrayLike) -> FloatArray:
    """A read-only ``(frames, channels)`` float32 view of ``(channels, frames)`` audio."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"audio must be shaped (channels, frames), got {array.shape}")
    if array.shape[0] > 64:
        raise ValueError(
            f"audio shaped {array.shape} has more than 64 channels; pass (channels, frames)"
        )
    view = array.T  # (frames, C); a view, so a long song is not copied
    if view.flags.writeable:
        view = view.view()
        view.setflags(write=False)
    return view


def seconds_to_frames(seconds: float, sample_rate: int) -> int:
    """Round a time in seconds to frames."""
    if not math.isfinite(seconds):
        raise ValueError("seconds must be finite")
    return round(seconds * sample_rate)
