"""Checks and decoding of uploaded source clips (no Ray).

The header is read first (``soundfile.info`` reads only that), so a clip that is too long, has
too many channels or an odd sample rate is refused before its audio is decoded.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf

from sa3_studio.server.config import UploadLimits
from sa3_studio.server.errors import ApiError

ACCEPTED_FORMATS = ("WAV", "FLAC")


def decode_upload(blob: bytes, limits: UploadLimits) -> tuple[npt.NDArray[np.float32], int]:
    """``(audio (channels, frames) float32, sample rate)`` of an uploaded WAV or FLAC.

    Raises:
        ApiError: too large, too long, too many channels, an odd rate, or unreadable.
    """
    if len(blob) > limits.max_bytes:
        raise too_large(len(blob), limits)
    try:
        info = sf.info(io.BytesIO(blob))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise ApiError(
            400, "bad_audio", "The upload is not a readable WAV or FLAC file; send float WAV."
        ) from None
    if info.format not in ACCEPTED_FORMATS:
        raise ApiError(
            415, "bad_audio", f"Uploads must be WAV or FLAC, not {info.format}; send float WAV."
        )
    if not 1 <= info.channels <= limits.max_channels:
        raise ApiError(
            422,
            "too_many_channels",
            f"The upload has {info.channels} channels; the server accepts at most "
            f"{limits.max_channels}. Mix it down to stereo first.",
        )
    if not limits.min_rate <= info.samplerate <= limits.max_rate:
        raise ApiError(
            422,
            "bad_sample_rate",
            f"The upload's sample rate is {info.samplerate} Hz; the server accepts "
            f"{limits.min_rate}-{limits.max_rate} Hz.",
        )
    seconds = info.frames / info.samplerate if info.frames > 0 else 0.0
    if seconds > limits.max_seconds:
        raise ApiError(
            413,
            "audio_too_long",
            f"The upload is {seconds:.1f} s long; the server accepts at most "
            f"{limits.max_seconds:.0f} s. Send only the window the model needs.",
        )
    try:
        data, rate = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        raise ApiError(400, "bad_audio", "The uploaded audio could not be decoded.") from None
    if data.shape[0] == 0:
        raise ApiError(400, "bad_audio", "The uploaded audio is empty.")
    if not np.isfinite(data).all():
        raise ApiError(400, "bad_audio", "The uploaded audio contains NaN or infinite samples.")
    return np.ascontiguousarray(data.T, dtype=np.float32), int(rate)


def too_large(size: int, limits: UploadLimits) -> ApiError:
    return ApiError(
        413,
        "upload_too_large",
        f"The upload is {size / 1e6:.1f} MB; the server accepts at most "
        f"{limits.max_bytes / 1e6:.1f} MB. Send a shorter window.",
    )
