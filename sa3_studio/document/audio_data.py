"""Read-only audio buffers with a content id.

Every piece of audio in a project (an imported file, the result of an edit, a generated take) is
an :class:`AudioData`: a read-only ``float32`` array shaped ``(channels, frames)`` at the project
rate, plus a content id (a hash of its samples). Snapshots of the project share these buffers, so
undo history costs only what changed, and the project store writes each buffer once, under its
content id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float32]
"""A float32 sample array shaped ``(channels, frames)``."""

_ID_DIGEST_BYTES = 16


def content_id_of(samples: npt.ArrayLike) -> str:
    """Return the content id of a ``(channels, frames)`` array: a hash of its float32 samples.

    The id covers the shape and the exact bits, so two buffers with the same id hold the same
    audio. It is stable across runs, platforms and program versions (the store relies on it).

    Args:
        samples: audio shaped ``(channels, frames)``; it is converted to C-ordered float32 first.

    Returns:
        32 lowercase hex digits.
    """
    array = np.ascontiguousarray(samples, dtype=np.float32)  # (C, T)
    if array.ndim != 2:
        raise ValueError(f"audio must be shaped (channels, frames), got shape {array.shape}")
    digest = hashlib.blake2b(digest_size=_ID_DIGEST_BYTES, person=b"sa3-audio-f32le")
    digest.update(f"{array.shape[0]}x{array.shape[1]};".encode("ascii"))
    # Hash little-endian bytes so the id does not depend on the machine's byte order.
    digest.update(array.astype("<f4", copy=False).data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class AudioData:
    """An immutable ``(channels, frames)`` float32 buffer at the project sample rate.

    Build one with :meth:`from_array`. Two buffers are equal when their content ids are equal.

    Attributes:
        samples: the read-only sample array, C-ordered float32, shaped ``(channels, frames)``.
        content_id: hash of the samples (see :func:`content_id_of`).
    """

    samples: FloatArray = field(repr=False)
    content_id: str

    def __post_init__(self) -> None:
        s = self.samples
        if not isinstance(s, np.ndarray) or s.dtype != np.float32 or s.ndim != 2:
            raise ValueError("AudioData needs a float32 array shaped (channels, frames)")
        if s.shape[0] < 1 or s.shape[1] < 1:
            raise ValueError(f"AudioData needs at least one channel and one frame, got {s.shape}")
        if s.flags.writeable or not s.flags.c_contiguous:
            raise ValueError("AudioData samples must be read-only and C-contiguous")
        if not isinstance(self.content_id, str) or not self.content_id:
            raise ValueError("AudioData needs a non-empty content id")

    @classmethod
    def from_array(cls, array: npt.ArrayLike, *, copy: bool = True) -> AudioData:
        """Wrap audio in a read-only buffer and compute its content id.

        Args:
            array: samples shaped ``(channels, frames)``; a 1-D array is taken as one channel.
            copy: when False and ``array`` is already a C-ordered float32 ndarray, it is adopted
                without a copy and made read-only; the caller must not keep writable views of it.

        Returns:
            The buffer.

        Raises:
            ValueError: the array is empty, not 1-D/2-D, or holds NaN or infinity.
        """
        if (
            not copy
            and isinstance(array, np.ndarray)
            and array.dtype == np.float32
            and array.flags.c_contiguous
            and array.ndim == 2
        ):
            samples = array
        else:
            samples = np.array(array, dtype=np.float32, order="C", copy=True)
        if samples.ndim == 1:
            samples = samples.reshape(1, -1)
        if samples.ndim != 2:
            raise ValueError(f"audio must be shaped (channels, frames), got shape {samples.shape}")
        if samples.size and not np.isfinite(samples).all():
            raise ValueError("audio holds NaN or infinite samples")
        samples.setflags(write=False)
        return cls(samples, content_id_of(samples))

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        """Number of frames (samples per channel)."""
        return int(self.samples.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the samples, in bytes."""
        return int(self.samples.nbytes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AudioData):
            return NotImplemented
        return self.content_id == other.content_id

    def __hash__(self) -> int:
        return hash(self.content_id)

    def __repr__(self) -> str:
        return f"AudioData({self.channels}x{self.frames}, id={self.content_id[:12]})"
