"""Fixed properties of every project: the model's sample rate, stereo, and the latent frame."""

from __future__ import annotations

SAMPLE_RATE = 44100
"""Frames per second of every project (the rate Stable Audio 3 works at)."""

CHANNELS = 2
"""Every project is stereo; other channel counts are converted on import and export."""

LATENT_FRAMES = 4096
"""Audio frames per latent frame of the SA3 autoencoders (about 92.9 ms)."""

MAX_FRAMES = 1 << 36
"""Longest timeline a project may span (about 18 days at 44.1 kHz). A position beyond it is
damage in a file or a runaway edit, never music; checked whenever a project is built, so a
project file that claims one is refused as damaged when it opens."""
