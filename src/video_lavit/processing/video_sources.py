"""Opening a video input for reading: only what was named, as a file, and only self-contained containers.

A path is opened by us as an ordinary file (so `file:x.mp4`, `http://...`, `pipe:` or `concat:` in a file name are
just names), bytes are read from memory, and a binary file object is read as it is. FFmpeg then sees one stream of
bytes through PyAV's file-object I/O, and may choose its demuxer only from `VIDEO_CONTAINER_FORMATS`: containers
that hold their frames themselves. Playlists and scripts that tell FFmpeg to read other files or URLs (HLS `.m3u8`,
ffconcat scripts, DASH and IMF manifests, SDP/RTP/RTSP session files, image-sequence patterns, ...) are refused
before anything they name is opened, whatever the file is called; no nested file or network protocol is allowed
either (`protocol_whitelist`).

MP4/MOV files are also checked for truncation before FFmpeg reads them (`check_iso_bmff_boxes`): FFmpeg reads a
truncated MP4 whose index is at the front without an error and silently stops early.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
from collections.abc import Iterator
from typing import BinaryIO

import av

from ..errors import UnsupportedVideoError, VideoDecodeError

VideoInput = str | os.PathLike | bytes | bytearray | BinaryIO | dict
"""A path, the file's bytes, a binary file object, or a `datasets.Video(decode=False)` row (`{"path", "bytes"}`)."""

# FFmpeg demuxers (by name; `mov` is the MP4/MOV/3GP demuxer, `matroska` the MKV/WebM one) that read their frames
# from the bytes given and nothing else. Audio-only and still-image formats are listed so that such files get their
# own clear message (no video stream, a still image) instead of "unsupported format".
VIDEO_CONTAINER_FORMATS = frozenset(
    {
        # video containers
        "mov", "matroska", "avi", "mpegts", "mpeg", "flv", "live_flv", "asf", "ogg", "nut", "mxf", "gxf", "dv",
        "rm", "wtv", "nsv", "ivf", "yuv4mpegpipe", "gif", "apng", "smjpeg", "nuv", "mjpeg",
        # raw video elementary streams
        "mpegvideo", "m4v", "h264", "hevc", "vvc", "h263", "h261", "obu", "av1", "vc1", "cavsvideo", "dirac",
        # still images
        "image2pipe", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe", "jpegxl_pipe",
        "qoi_pipe", "ppm_pipe", "pgm_pipe", "pbm_pipe", "pam_pipe",
        # audio only
        "mp3", "wav", "w64", "flac", "aac", "aiff", "caf",
    }
)  # fmt: skip
_OPEN_OPTIONS = {
    "format_whitelist": ",".join(sorted(VIDEO_CONTAINER_FORMATS)),
    # No demuxer above opens other resources; should one try, no protocol (file, http, ...) is allowed.
    "protocol_whitelist": "none",
}
# What the first bytes of a refused file say it is, for the message.
_REFERENCING_FORMATS = [
    (re.compile(rb"\s*#EXTM3U"), "an HLS playlist (.m3u8), a text file that lists other files or URLs to read"),
    (re.compile(rb"\s*ffconcat version"), "an ffconcat script, a text file that lists other files to read"),
    (re.compile(rb"\s*(<\?xml|<MPD|<CompositionPlaylist)", re.IGNORECASE), "an XML manifest (DASH, IMF, ...)"),
    (re.compile(rb"\s*v=0\s"), "an SDP session description, which points at network streams"),
]
_URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def describe_video_input(video: VideoInput) -> str:
    """A short name for `video` to use in messages."""
    if isinstance(video, (str, os.PathLike)):
        return os.fsdecode(os.fspath(video))
    if isinstance(video, dict):
        return str(video.get("path") or "<video bytes>")
    if isinstance(video, (bytes, bytearray)):
        return f"<{len(video)} bytes of video>"
    return str(getattr(video, "name", None) or f"<{type(video).__name__}>")


def open_regular_file(path: str, error_class: type[Exception] = VideoDecodeError, kind: str = "video") -> BinaryIO:
    """Open `path` for binary reading if it is a non-empty regular file, else raise `error_class` saying why.

    The file is opened before it is inspected (non-blocking, so a FIFO cannot stall the open), so what is checked is
    what is read, even if the path is replaced in between.
    """
    if not path:
        raise error_class(f"an empty path was given; pass the path of a {kind} file.")
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if _URL_PATTERN.match(path):
            raise error_class(
                f"{path}: is a URL, and {kind}s are read from local files only (nothing is downloaded); download it "
                "first and pass the file's path."
            ) from None
        raise error_class(f"{path}: no such file; check the path.") from None
    except IsADirectoryError:
        raise error_class(f"{path}: is a directory; pass a {kind} file.") from None
    except OSError as error:
        raise error_class(
            f"{path}: cannot be read ({error.strerror or error}); check the path and the file's permissions."
        ) from error
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise error_class(f"{path}: is a directory; pass a {kind} file.")
        if not stat.S_ISREG(info.st_mode):
            raise error_class(
                f"{path}: is not a regular file (a pipe, device or socket); pass a {kind} file, or open the stream "
                "yourself and pass the binary file object."
            )
        if info.st_size == 0:
            raise error_class(f"{path}: the file is empty; re-download or re-export the {kind}.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _source(video: VideoInput, name: str) -> tuple[BinaryIO, bool]:
    """The binary stream to read `video` from, and whether we opened it (and so must close it)."""
    if isinstance(video, dict):
        data, path = video.get("bytes"), video.get("path")
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise VideoDecodeError(
                f"{name}: the video row's 'bytes' is a {type(data).__name__}, not bytes; pass the file's bytes."
            )
        if data:
            video = data
        elif path:
            video = path
        else:
            raise VideoDecodeError(f"{name}: the video row has neither 'bytes' nor 'path'; pass a file or its bytes.")
    if isinstance(video, (str, os.PathLike)):
        return open_regular_file(os.fsdecode(os.fspath(video))), True
    if isinstance(video, (bytes, bytearray)):
        if len(video) == 0:
            raise VideoDecodeError(f"{name}: no bytes were given; pass a non-empty video.")
        return io.BytesIO(video), True
    if isinstance(video, io.TextIOBase):
        raise VideoDecodeError(f"{name}: the file object is open in text mode; open the video with open(path, 'rb').")
    if hasattr(video, "read"):
        return video, False
    raise VideoDecodeError(
        f"{name}: cannot read a {type(video).__name__} as a video; pass a path, bytes or a binary file object."
    )


def _peek(file: BinaryIO, size: int = 64) -> bytes:
    """The first `size` bytes of a seekable `file` (position restored), or b"" for a stream that cannot seek."""
    try:
        if not file.seekable():
            return b""
        position = file.tell()
        file.seek(0)
        head = file.read(size)
        file.seek(position)
    except (AttributeError, OSError, ValueError):
        return b""
    return head if isinstance(head, bytes) else b""


def _refused_format_error(file: BinaryIO, name: str, error: Exception) -> UnsupportedVideoError:
    head = _peek(file)
    what = next((description for pattern, description in _REFERENCING_FORMATS if pattern.match(head)), None)
    if what is not None:
        return UnsupportedVideoError(
            f"{name}: is {what}. Only self-contained video files are read, never the files or URLs such a list "
            "names; pass the video file itself."
        )
    return UnsupportedVideoError(
        f"{name}: its format is not one of the self-contained video containers this package reads (MP4/MOV, "
        f"MKV/WebM, AVI, MPEG-TS/PS, FLV, ASF/WMV, Ogg, MXF, raw H.264/HEVC/MPEG-4 streams, ...; FFmpeg: "
        f"{_reason(error)}); re-encode it to MP4 first (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)."
    )


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


@contextlib.contextmanager
def open_video_container(video: VideoInput, name: str) -> Iterator[av.container.InputContainer]:
    """Open `video` for demuxing (see the module docstring); the container and any file we opened are closed on exit.

    Raises:
        `VideoDecodeError`: missing, empty, truncated or unreadable input.
        `UnsupportedVideoError`: a format outside `VIDEO_CONTAINER_FORMATS` (playlists and scripts among them).
    """
    file, owned = _source(video, name)
    try:
        check_iso_bmff_boxes(file, name)
        try:
            container = av.open(file, mode="r", metadata_errors="ignore", options=dict(_OPEN_OPTIONS))
        except av.ArgumentError as error:  # FFmpeg's answer to a demuxer outside the whitelist
            raise _refused_format_error(file, name, error) from error
        except av.FFmpegError as error:
            if any(pattern.match(_peek(file)) for pattern, _ in _REFERENCING_FORMATS):
                raise _refused_format_error(file, name, error) from error
            raise VideoDecodeError(
                f"{name}: not a readable video ({_reason(error)}); check that it is a video file."
            ) from error
        except (OSError, ValueError, TypeError) as error:
            raise VideoDecodeError(f"{name}: could not be opened ({error}); check that it is a video file.") from error
        try:
            yield container
        finally:
            container.close()
    finally:
        if owned:
            file.close()


# Box types that can open an ISO BMFF (MP4, MOV, M4V, 3GP) file, and what the boxes whose loss matters hold.
_ISO_BMFF_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_ISO_BMFF_ESSENTIAL_BOXES = {
    b"moov": "the index of the frames",
    b"mdat": "the encoded frames",
    b"moof": "a fragment's index",
}


def check_iso_bmff_boxes(file: BinaryIO, name: str) -> None:
    """Raise `VideoDecodeError` if `file` is an MP4/MOV whose top-level boxes show it is truncated.

    The size each top-level box declares is checked against the size of the file. Only box headers are read, and
    the file position is restored. Files that are not ISO BMFF, or that cannot seek, are left to FFmpeg.
    """
    try:
        if not file.seekable():
            return
        start = file.tell()
    except (AttributeError, OSError, ValueError):
        return
    try:
        problem = _iso_bmff_problem(file)
    except (OSError, ValueError):
        problem = None
    finally:
        try:
            file.seek(start)
        except (OSError, ValueError):
            pass
    if problem is not None:
        raise VideoDecodeError(f"{name}: {problem}")


def _iso_bmff_problem(file: BinaryIO) -> str | None:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    head = file.read(8)
    if not isinstance(head, bytes) or len(head) < 8 or head[4:8] not in _ISO_BMFF_FIRST_BOXES:
        return None
    position, seen = 0, set()
    while position + 8 <= size:
        file.seek(position)
        header = file.read(16)
        box_size, box_type, header_size = int.from_bytes(header[:4], "big"), header[4:8], 8
        if box_size == 1 and len(header) == 16:
            box_size, header_size = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:  # the last box, up to the end of the file
            box_size = size - position
        if box_size < header_size or not all(32 <= byte < 127 or byte == 0xA9 for byte in box_type):
            return None  # not a box structure this walk understands: FFmpeg will judge
        seen.add(box_type)
        end = position + box_size
        if end > size:
            if box_type not in _ISO_BMFF_ESSENTIAL_BOXES:
                return None
            return (
                f"the file is truncated: its '{box_type.decode('latin-1')}' box "
                f"({_ISO_BMFF_ESSENTIAL_BOXES[box_type]}) starts at byte {position} and declares {box_size} bytes, "
                f"but the file ends at byte {size} ({end - size} bytes missing). The download or recording was "
                "interrupted; re-download or re-export the video."
            )
        position = end
    if b"moov" in seen:
        return None
    found = ", ".join(sorted(box.decode("latin-1") for box in seen))
    return (
        f"the MP4/MOV file has no 'moov' box (the index of its frames; boxes found: {found}), so its frames cannot "
        "be located. The recording or download was probably interrupted before the index was written (or this is "
        "a media segment without its initialisation segment); re-download or re-export the video."
    )


__all__ = [
    "VIDEO_CONTAINER_FORMATS",
    "VideoInput",
    "check_iso_bmff_boxes",
    "describe_video_input",
    "open_regular_file",
    "open_video_container",
]
