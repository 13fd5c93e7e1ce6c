"""Fixed properties of every project: the model's sample rate, stereo, and the latent frame."""

from __future__ import annotations

SAMPLE_RATE = 44100
"""Frames per second of every project (the rate Stable Audio 3 works at)."""

CHANNELS = 2
"""Every project is stereo; other channel counts are converted on import and export."""

LATENT_FRAMES = 4096
"""Audio frames per latent frame of the SA3 autoencoders (about 92.9 ms)."""
