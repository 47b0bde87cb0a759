"""The package's exception hierarchy.

Every error a user can cause with bad input is one of these, raised with the offending file's name and what to do
about it. Every subclass is also a `ValueError` or an `OSError`, so code that already catches those around video
loading, model calls or file writing keeps working.
"""

from __future__ import annotations


class VideoLaVITError(Exception):
    """Base class of every error raised by `video_lavit`."""


class VideoDecodeError(VideoLaVITError, ValueError):
    """A video could not be read: missing, empty, truncated, corrupt, or not a video at all."""


class UnsupportedVideoError(VideoLaVITError, ValueError):
    """A readable file that cannot be used as asked: no video stream, a codec without motion vectors, a frame size
    the MPEG-4 re-encoding cannot hold, or a container that refers to other files (playlists, concat scripts)."""


class VideoTooLongError(UnsupportedVideoError):
    """A video (or an endless stream) longer than the reader's `max_duration`."""


class InvalidInputError(VideoLaVITError, ValueError):
    """A model was given inputs of the wrong shape, type or range (e.g. pixel values, code indices), or a
    configuration with impossible values."""


class UnknownOptionError(InvalidInputError, TypeError):
    """An option (keyword argument) that the called function does not take."""


class CheckpointConversionError(VideoLaVITError, ValueError):
    """A reference checkpoint could not be converted: missing, unreadable, or with keys that do not map."""


class CheckpointLoadError(VideoLaVITError, ValueError):
    """A saved model folder could not be loaded as it is: missing, or with weights that are missing, unexpected, of
    the wrong shape, or more than the machine's memory."""


class OutputError(VideoLaVITError, OSError):
    """An output could not be written safely: the target exists and holds files, is the input itself, is read-only,
    or the disk (or the temporary folder) is full. Nothing half-written is left behind."""


class EvaluationDataError(VideoLaVITError, ValueError):
    """An evaluation set could not be read as asked: a missing or malformed file, question and answer files that do
    not line up, a dataset without the columns of its layout."""


class JudgeError(VideoLaVITError, OSError):
    """The judge endpoint of an evaluation could not be used: unreachable after every retry, or refusing the
    request (a bad key, an unknown model)."""


__all__ = [
    "CheckpointConversionError",
    "EvaluationDataError",
    "JudgeError",
    "CheckpointLoadError",
    "InvalidInputError",
    "UnknownOptionError",
    "OutputError",
    "UnsupportedVideoError",
    "VideoDecodeError",
    "VideoLaVITError",
    "VideoTooLongError",
]
