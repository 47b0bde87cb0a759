"""The package's exception hierarchy.

Every error a user can cause with bad input is one of these, raised with the offending file's name and what to do
about it. `VideoDecodeError` and `UnsupportedVideoError` are also `ValueError`s, so code that already catches
`ValueError` around video loading keeps working.
"""

from __future__ import annotations


class VideoLaVITError(Exception):
    """Base class of every error raised by `video_lavit`."""


class VideoDecodeError(VideoLaVITError, ValueError):
    """A video could not be read: missing, empty, truncated, corrupt, or not a video at all."""


class UnsupportedVideoError(VideoLaVITError, ValueError):
    """A readable file that cannot be used as asked: no video stream, or a codec without motion vectors."""


class CheckpointConversionError(VideoLaVITError, ValueError):
    """A reference checkpoint could not be converted: missing, unreadable, or with keys that do not map."""


__all__ = ["CheckpointConversionError", "UnsupportedVideoError", "VideoDecodeError", "VideoLaVITError"]
