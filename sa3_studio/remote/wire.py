"""The wire format of the SA3 Studio server's API, version 1 (no Ray, no torch).

One module that both halves read: the client (:mod:`sa3_studio.remote.client`) writes
requests and reads events with it, the server (:mod:`sa3_studio.server`) reads requests and
writes events with it, so the two cannot drift apart.

* Audio travels as 32-bit float WAV (lossless for the engine's float32 samples; the server
  also accepts FLAC uploads). :func:`encode_wav` and :func:`decode_wav` are written here with
  the standard library so that the client needs no audio library for it.
* A source clip is named by :func:`source_id`, a SHA-256 of its float32 samples, shape and
  rate: the client can tell which clip the server already holds without uploading it again.
* A job streams newline-delimited JSON events (:class:`Event`): ``queued``, ``heartbeat``,
  ``started``, ``step``, then one ``result`` or ``error``.
* Errors are ``{"error": {"code": ..., "message": ...}}`` with one of :data:`ERROR_CODES`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import GenerationRequest

API_PREFIX = "/v1"
"""Every route of the current API starts with this."""

API_VERSION = 1

CONTENT_NDJSON = "application/x-ndjson"
CONTENT_WAV = "audio/wav"
CONTENT_FLAC = "audio/flac"

RESULT_FORMAT = "wav-float32"
"""How the result's audio is carried in the ``result`` event: base64 of a float WAV."""

HEARTBEAT_S = 0.5
"""The server sends an event at least this often while a job is queued or running."""

ERROR_CODES: Mapping[str, str] = {
    "unauthorized": "no valid bearer token",
    "token_in_query": "a token was sent in the query string, which is never accepted",
    "bad_request": "the request is malformed",
    "not_found": "no such route or job",
    "unknown_model": "the server offers no model by that name",
    "unknown_lora": "the server offers no LoRA by that name",
    "unknown_source": "the server does not hold that source clip (upload it)",
    "upload_too_large": "the upload is larger than the server accepts",
    "audio_too_long": "the uploaded audio is longer than the server accepts",
    "too_many_channels": "the uploaded audio has more channels than the server accepts",
    "bad_sample_rate": "the uploaded audio's sample rate is outside what the server accepts",
    "bad_audio": "the upload is not readable WAV or FLAC audio",
    "generation_failed": "the engine refused the request",
    "cancelled": "the job was cancelled",
    "busy": "the server's queue is full",
    "replica_died": "the engine replica running the job stopped",
    "internal": "the server failed unexpectedly",
}
"""Every error code the server sends, with what it means."""

RETRYABLE = frozenset({"replica_died"})
"""Codes after which the same job may simply be sent again."""


# -- audio -------------------------------------------------------------------------------------

_WAVE_FORMAT_IEEE_FLOAT = 3


def encode_wav(audio: npt.ArrayLike, sample_rate: int) -> bytes:
    """A 32-bit float WAV of ``(channels, frames)`` audio (exact for float32 samples)."""
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"audio must be (channels, frames), not {arr.shape}")
    channels = int(arr.shape[0])
    data = np.ascontiguousarray(arr.T).astype("<f4", copy=False).tobytes()
    block = 4 * channels
    fmt = struct.pack(
        "<HHIIHH", _WAVE_FORMAT_IEEE_FLOAT, channels, sample_rate, sample_rate * block, block, 32
    )
    # A float WAV carries a "fact" chunk with the frame count (RIFF's rule for non-PCM data).
    fact = struct.pack("<I", int(arr.shape[1]))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def decode_wav(blob: bytes) -> tuple[npt.NDArray[np.float32], int]:
    """``(audio (channels, frames) float32, sample rate)`` of a 32-bit float WAV.

    Raises:
        ValueError: not a 32-bit float WAV.
    """
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos = 12
    channels = rate = bits = tag = 0
    data: bytes | None = None
    while pos + 8 <= len(blob):
        cid = blob[pos : pos + 4]
        (size,) = struct.unpack("<I", blob[pos + 4 : pos + 8])
        chunk = blob[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunk[:16])
        elif cid == b"data":
            data = chunk
        pos += 8 + size + (size & 1)
    if tag != _WAVE_FORMAT_IEEE_FLOAT or bits != 32 or channels < 1 or data is None:
        raise ValueError("not a 32-bit float WAV")
    frames = len(data) // (4 * channels)
    samples = np.frombuffer(data[: frames * 4 * channels], dtype="<f4")
    audio = np.ascontiguousarray(samples.reshape(frames, channels).T, dtype=np.float32)
    return audio, int(rate)


def source_id(audio: npt.ArrayLike, sample_rate: int) -> str:
    """Content id of a clip: SHA-256 of its float32 samples, shape and rate (hex).

    The client computes it to ask whether the server holds a clip; the server computes it over
    what it decoded, so an upload of the same samples gets the same id.
    """
    arr = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
    if arr.ndim == 1:
        arr = arr[None, :]
    h = hashlib.sha256(b"sa3-source-v1")
    h.update(struct.pack("<III", int(sample_rate), int(arr.shape[0]), int(arr.shape[1])))
    h.update(arr.astype("<f4", copy=False).tobytes())
    return h.hexdigest()


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoraChoice:
    """A LoRA the server offers, chosen by its server-side name, with a strength."""

    name: str
    strength: float = 1.0


def request_to_json(
    model: str,
    request: GenerationRequest,
    *,
    inpaint_source: str | None = None,
    init_source: str | None = None,
    loras: Sequence[LoraChoice] = (),
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/jobs`` for an engine request (audio goes by source id)."""

    def floats(v: float | Sequence[float] | None) -> float | list[float] | None:
        if v is None or isinstance(v, int | float):
            return None if v is None else float(v)
        return [float(x) for x in v]

    prompt = request.prompt if isinstance(request.prompt, str) else list(request.prompt)
    return {
        "model": model,
        "prompt": prompt,
        "negative_prompt": request.negative_prompt,
        "duration": floats(request.duration),
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "apg_scale": float(request.apg_scale),
        "cfg_interval": [float(v) for v in request.cfg_interval],
        "cfg_rescale": float(request.cfg_rescale),
        "seed": request.seed,
        "batch_size": int(request.batch_size),
        "inpaint_source": inpaint_source,
        "inpaint_regions": [[float(s), float(e)] for s, e in request.inpaint_regions],
        "init_source": init_source,
        "init_noise_level": float(request.init_noise_level),
        "sampler": request.sampler,
        "decode_range": None
        if request.decode_range is None
        else [float(v) for v in request.decode_range],
        "loras": [{"name": c.name, "strength": float(c.strength)} for c in loras],
    }


# -- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerModel:
    """A model a server offers (``GET /v1/models``).

    Attributes:
        name: the server-side name clients choose it by.
        kind: "post-trained" or "base".
        family: "small", "medium" or "tiny".
        sample_rate: its audio rate.
        max_seconds: the longest audio one pass can make.
        default_steps: sampler steps it uses by default.
        device: where its replicas run ("cpu", "cuda").
        dtype: their compute precision ("auto", "float32", ...).
        weights_hash: short id of the weights it serves.
        loras: names of the LoRAs offered for it.
        replicas: how many replicas serve it ("2" or "1-4" when autoscaling).
    """

    name: str
    kind: str
    family: str
    sample_rate: int
    max_seconds: float
    default_steps: int
    device: str
    dtype: str
    weights_hash: str
    loras: tuple[str, ...] = ()
    replicas: str = "1"

    @property
    def is_base(self) -> bool:
        return self.kind == "base"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "sample_rate": self.sample_rate,
            "max_seconds": self.max_seconds,
            "default_steps": self.default_steps,
            "device": self.device,
            "dtype": self.dtype,
            "weights_hash": self.weights_hash,
            "loras": list(self.loras),
            "replicas": self.replicas,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ServerModel:
        """Read one entry of ``GET /v1/models``.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        try:
            return cls(
                name=str(d["name"]),
                kind=str(d["kind"]),
                family=str(d.get("family", "")),
                sample_rate=int(d["sample_rate"]),
                max_seconds=float(d["max_seconds"]),
                default_steps=int(d["default_steps"]),
                device=str(d.get("device", "")),
                dtype=str(d.get("dtype", "")),
                weights_hash=str(d.get("weights_hash", "")),
                loras=tuple(str(x) for x in d.get("loras", ())),
                replicas=str(d.get("replicas", "1")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed model entry: {exc}") from None


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a job's event stream.

    Attributes:
        kind: "queued", "heartbeat", "started", "step", "result" or "error".
        data: the rest of the line's fields.
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        return json.dumps({"event": self.kind, **self.data}, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Event:
        """Parse one NDJSON line.

        Raises:
            ValueError: not a JSON object with an ``event`` field.
        """
        obj = json.loads(line)
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise ValueError("not an event")
        kind = obj.pop("event")
        return cls(kind, obj)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"code": code, "message": message}}


def audio_to_b64(audio: npt.ArrayLike, sample_rate: int) -> str:
    return base64.b64encode(encode_wav(audio, sample_rate)).decode("ascii")


def audio_from_b64(text: str) -> tuple[npt.NDArray[np.float32], int]:
    return decode_wav(base64.b64decode(text, validate=True))


def finite_or_none(value: object) -> float | None:
    """A float that JSON can carry (``None`` for NaN or infinity)."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
