"""The package's exception hierarchy.

Every error a user can cause with bad input is one of these, raised with the offending file's name and what to do
about it. Every subclass is also a `ValueError`, so code that already catches `ValueError` around video loading or
model calls keeps working.
"""

from __future__ import annotations


class VideoLaVITError(Exception):
    """Base class of every error raised by `video_lavit`."""


class VideoDecodeError(VideoLaVITError, ValueError):
    """A video could not be read: missing, empty, truncated, corrupt, or not a video at all."""


class UnsupportedVideoError(VideoLaVITError, ValueError):
    """A readable file that cannot be used as asked: no video stream, or a codec without motion vectors."""


class InvalidInputError(VideoLaVITError, ValueError):
    """A model was given inputs of the wrong shape, type or range (e.g. pixel values, code indices)."""


class CheckpointConversionError(VideoLaVITError, ValueError):
    """A reference checkpoint could not be converted: missing, unreadable, or with keys that do not map."""


__all__ = [
    "CheckpointConversionError",
    "InvalidInputError",
    "UnsupportedVideoError",
    "VideoDecodeError",
    "VideoLaVITError",
]
