"""The one exception tree of SA3 Studio.

Every error a user can see derives from :class:`Sa3Error`. Its message is a sentence that says
what happened and, where it can, what to do. Errors are raised where they are detected and caught
only at thread and UI boundaries. This module is a leaf: it imports nothing from the project, so
every package (the pure document model included) may use it.
"""

from __future__ import annotations


class Sa3Error(Exception):
    """Base class: an error with a message meant for the user."""


class ConfigError(Sa3Error):
    """A model configuration file is missing, malformed or has unknown fields."""


class WeightsError(Sa3Error):
    """Model weights are missing, corrupt, or do not match the configuration."""


class AudioFileError(Sa3Error):
    """An audio file cannot be read or written."""


class EditError(Sa3Error):
    """An edit cannot be applied to the project as it is."""


class ProjectFileError(Sa3Error):
    """A project file cannot be opened or saved."""


class PlaybackError(Sa3Error):
    """Audio cannot be played (for example: no output device)."""


class GenerationError(Sa3Error):
    """A generation request is invalid for the loaded model."""


class Cancelled(Sa3Error):  # noqa: N818 - the name the architecture uses
    """A long operation was cancelled by the user."""
