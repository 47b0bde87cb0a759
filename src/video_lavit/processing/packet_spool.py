"""The spool of the video reader: one stream's encoded packets in an anonymous temporary file.

The reader re-encodes (or copies) the video stream once, writing its packets here, then decodes only the clips it
needs from the spool. The file has no name on disk, so it is gone when the reader closes or the process ends. Its
size is checked against the free space of the temporary folder before and while it is written (`OutputError`,
naming the folder).
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import threading

import av

from ..errors import InvalidInputError, OutputError

# The temporary file stops growing when its folder has less than this much space left (256 MiB, or a tenth of a
# smaller disk), so that a full disk never hits other programs; the free space is checked every
# `_SPACE_CHECK_BYTES` written.
_TEMP_RESERVE_BYTES = 256 * 2**20
_SPACE_CHECK_BYTES = 16 * 2**20


class PacketSpool:
    """Encoded packets of one stream in an anonymous temporary file, with their offsets and I-frame flags.

    `expected_bytes` (when known) is checked against the free space of the temporary folder before anything is
    written; while writing, the spool stops with `OutputError` before the folder is full.
    """

    def __init__(
        self,
        name: str,
        codec_name: str,
        extradata: bytes | None = None,
        width: int = 0,
        height: int = 0,
        expected_bytes: int | None = None,
    ):
        self.name = name
        self.codec_name = codec_name
        self.extradata = extradata
        self.width = width
        self.height = height
        self.directory = tempfile.gettempdir()
        self.offsets: list[int] = []
        self.sizes: list[int] = []
        self.intra_frames: list[int] = []
        # Presentation time of each packet, seconds from the first (kept for streams read as they are, whose frames
        # need not be evenly spaced).
        self.times: list[float] = []
        self._end = 0
        # Written on the encoder's thread, read by the threads that decode clips (`pipelining`).
        self._lock = threading.Lock()
        self._next_space_check = _SPACE_CHECK_BYTES
        self.reserve = _TEMP_RESERVE_BYTES
        try:
            self.reserve = min(_TEMP_RESERVE_BYTES, shutil.disk_usage(self.directory).total // 10)
        except OSError:
            pass
        if expected_bytes:
            free = self._free_space()
            if free is not None and expected_bytes > free - self.reserve:
                raise self._space_error(
                    f"needs about {_gigabytes(expected_bytes)} of temporary space for the re-encoded stream, but "
                    f"{self.directory} has {_gigabytes(free)} free"
                )
        try:
            self.file = tempfile.TemporaryFile()
        except OSError as error:
            raise OutputError(
                f"{self.name}: cannot create a temporary file in {self.directory} ({error.strerror or error}); "
                "set TMPDIR to a writable folder."
            ) from error

    def _free_space(self) -> int | None:
        try:
            return shutil.disk_usage(self.directory).free
        except OSError:
            return None

    def _space_error(self, what: str) -> OutputError:
        return OutputError(
            f"{self.name}: {what}. Free some space there, or set TMPDIR to a folder with more room (the temporary "
            "file holds the re-encoded video, about bit_rate x duration; it is deleted when reading ends)."
        )

    def append(self, packet: av.Packet) -> None:
        data = bytes(packet)
        if not data:
            return
        try:
            with self._lock:  # written on the encoder's thread (`pipelining.EncoderThread`)
                if self.file.closed:
                    raise InvalidInputError(f"{self.name}: the reader is closed.")
                self.file.write(data)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._space_error(
                    f"the temporary folder {self.directory} is full after {_gigabytes(self._end)} of the re-encoded "
                    "stream"
                ) from error
            raise OutputError(
                f"{self.name}: writing the temporary file in {self.directory} failed ({error.strerror or error}); "
                "set TMPDIR to a writable folder with free space."
            ) from error
        if packet.is_keyframe:
            self.intra_frames.append(len(self.offsets))
        self.offsets.append(self._end)
        self.sizes.append(len(data))
        self._end += len(data)
        if self._end >= self._next_space_check:
            self._next_space_check = self._end + _SPACE_CHECK_BYTES
            free = self._free_space()
            if free is not None and free < self.reserve:
                raise self._space_error(
                    f"the temporary folder {self.directory} has only {_gigabytes(free)} left after "
                    f"{_gigabytes(self._end)} of the re-encoded stream"
                )

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int) -> bytes:
        with self._lock:
            if self.file.closed:
                raise InvalidInputError(f"{self.name}: the reader is closed; read the clips before closing it.")
            self.file.seek(self.offsets[index])
            return self.file.read(self.sizes[index])

    def close(self) -> None:
        with self._lock:
            self.file.close()


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


__all__ = ["PacketSpool"]
