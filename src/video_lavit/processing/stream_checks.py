"""Damage that FFmpeg reports but conceals, turned into `VideoDecodeError` (the reader's stream checks).

FFmpeg conceals most damage (the reference's ffmpeg command line would go on and re-encode the concealed frames),
which would give silently wrong clips, so every sign of damage FFmpeg reports raises a `VideoDecodeError` naming the
file, where the damage is and what to do:
- packets the demuxer flags as corrupt (a partial last packet of a truncated file, MPEG-TS continuity errors, ...);
- errors the decoder returns; for H.264 and HEVC also frames it flags as concealed, once the stream has produced a
  clean frame (frames before the first clean one are the normal start of a stream cut mid-GOP). FFmpeg's MPEG-4
  decoder flags valid slice-threaded frames too, so for the other codecs the flag is not used;
- AVI files whose index lists frames the demuxer never returned (it skips what follows damaged data);
- a video track whose packets stop more than a second short of the duration its header declares (Matroska/WebM
  `DURATION` tags, which FFmpeg and mkvmerge write; AVI frame counts): the end was cut off, or the demuxer lost
  the rest of the file after damage in the middle;
- consecutive frames more than 10 minutes apart (or twice the length the header declares, if that is longer), or
  timestamps spread so thinly (a damaged frame rate in a header) that the `fps` filter would repeat each frame
  thousands of times, after the command line's timestamp corrections: the re-encoding would take hours.

In formats that allow timestamp discontinuities (MPEG-TS/PS, ...), a packet flagged corrupt a few packets before the
clock jumps is the seam of two recordings joined end to end (`cat a.ts b.ts`: the continuity counters restart
there), not damage; it is accepted, as ffmpeg's command line accepts it.
Damage that leaves the bitstream decodable without an error cannot be told from a valid stream and is not detected:
e.g. a few garbled bytes inside a CABAC-coded H.264 slice or in an MPEG-4 frame, the last second of a Matroska file,
and files cut short in formats that declare no length and need no index (MPEG-TS and MPEG-PS/VOB, ASF/WMV, NUT):
such a file reads as the shorter video it now is. Truncated MP4/MOV files are found before decoding
(`video_sources.check_iso_bmff_boxes`).
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from ..errors import VideoDecodeError

# A video track may stop this many seconds short of the duration its header declares before it counts as truncated
# (valid VFR AVI files end a few empty "dropped frame" chunks short of their declared frame count).
TRUNCATION_TOLERANCE_SECONDS = 1.0
# Decoders whose "corrupt frame" flag means damage. FFmpeg's MPEG-4 Part 2 decoder (and the other codecs built on
# its error resilience) flags valid frames of slice-threaded MPEG-4 as damaged, so there the flag is ignored and only
# decoder errors count.
CORRUPT_FLAG_CODECS = frozenset({"h264", "hevc"})
# Consecutive frames further apart than this (or than twice the declared length, if that is longer) mean a damaged
# timestamp: the `fps` filter would fill the gap with hours of repeated frames.
MAX_FRAME_GAP_SECONDS = 600.0
# A timestamp that moves back by more than this, or forward by more than this, marks a discontinuity (as the
# command line's -dts_delta_threshold and its 0.1 s backwards tolerance).
# A damaged frame rate in a header (e.g. an AVI whose frames each "last" days) makes the `fps` filter repeat every
# frame millions of times: beyond the first four hours' worth of output, the re-encoding may make at most this many
# frames per decoded source frame (this matters when `max_duration` is lifted).
MAX_OUTPUT_FRAMES_PER_SOURCE_FRAME = 1000
FREE_OUTPUT_SECONDS = 4 * 3600
_SEAM_FORWARD_SECONDS = 10.0
_SEAM_BACKWARD_SECONDS = 0.1
# The demuxer flags a packet a little before the seam (the last packets of the first recording are still buffered):
# the clock must jump within this many packets after the flagged one.
_SEAM_WINDOW_PACKETS = 8
_TS_DISCONT = av.format.Flags.ts_discont.value
ADVICE = "Re-download or re-export the video (or re-encode what is readable with ffmpeg first)."


def reason(error: Exception) -> str:
    """FFmpeg's description of an error, for messages."""
    return getattr(error, "strerror", None) or str(error)


def parse_duration_tag(value: object) -> float | None:
    """Seconds in a Matroska `DURATION` tag (`HH:MM:SS.fffffffff`), or None."""
    try:
        hours, minutes, seconds = str(value).strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class StreamDamageCheck:
    """Watches one stream's packets and frames for damage that FFmpeg reports but conceals (see the module docstring).

    Only reads flags and timestamps, so the frames that come out are exactly those of `container.decode(stream)`.
    """

    def __init__(
        self,
        name: str,
        stream: av.video.stream.VideoStream,
        declared_seconds: float | None = None,
        output_fps: int | None = None,
    ):
        self.name = name
        self.stream = stream
        self.output_fps = output_fps
        self.first_frame_time: float | None = None
        self.max_frame_gap = max(MAX_FRAME_GAP_SECONDS, 2 * (declared_seconds or 0.0))
        self.discontinuous = bool(stream.container.format.flags & _TS_DISCONT)
        # A corrupt packet of a discontinuous format waits for the next one: a seam if the clock jumps there.
        self.pending_corruption: VideoDecodeError | None = None
        self.pending_time: float | None = None
        self.pending_packet = 0
        self.trust_corrupt_flag = stream.codec_context.name in CORRUPT_FLAG_CODECS
        self.packets = 0
        self.data_packets = 0
        # Byte positions of the packets read, to find the first one an AVI's index lists but the demuxer lost.
        self.positions: set[int | None] | None = set() if stream.container.format.name == "avi" else None
        self.frames = 0
        self.clean_frame_seen = False
        self.position: int | None = None
        self.time: float | None = None
        self.end_time: float | None = None
        self.frame_time: float | None = None

    def demux(self, container: av.container.InputContainer) -> Iterator[av.Packet]:
        """`container.demux(stream)`, checking every packet (the final flush packet included, unchecked)."""
        for packet in container.demux(self.stream):
            if packet.size or packet.pts is not None or packet.dts is not None:
                self._check_packet(packet)
            yield packet

    def decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """`packet.decode()`, turning decoder errors and concealed frames into `VideoDecodeError`."""
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            raise VideoDecodeError(
                f"{self.name}: decoding failed {self.where()} ({reason(error)}); the file is damaged. {ADVICE}"
            ) from error
        for frame in frames:
            self.frames += 1
            if not (frame.is_corrupt and self.trust_corrupt_flag):
                self.clean_frame_seen = True
            elif self.clean_frame_seen:  # corrupt frames before the first clean one: a stream cut mid-GOP
                when = f" at {frame.time:.2f} s" if frame.time is not None else ""
                raise VideoDecodeError(
                    f"{self.name}: video frame {self.frames - 1}{when} is damaged (the decoder concealed errors in "
                    f"it, so its pixels and motion would be wrong; last packet read {self.where()}). {ADVICE}"
                )
        return frames

    def check_frame_time(self, time: float) -> None:
        """Refuse a frame `time` seconds into the video that lies far beyond the one before it, or that would make
        the `fps` filter repeat each frame thousands of times (a damaged timestamp or frame rate)."""
        if self.frame_time is not None and time - self.frame_time > self.max_frame_gap:
            raise VideoDecodeError(
                f"{self.name}: the timestamps jump from {self.frame_time:.2f} s to {time:.2f} s between two video "
                f"frames ({self.where()}): the frame rate or a timestamp in the file is damaged, and the re-encoding "
                "would repeat one frame for the whole gap. Re-download the video, or re-encode it with ffmpeg at a "
                "fixed frame rate first (e.g. ffmpeg -i IN -r 25 -c:v libx264 OUT.mp4)."
            )
        if self.first_frame_time is None:
            self.first_frame_time = time
        if self.output_fps:
            output_frames = (time - self.first_frame_time) * self.output_fps
            budget = max(FREE_OUTPUT_SECONDS * self.output_fps, MAX_OUTPUT_FRAMES_PER_SOURCE_FRAME * self.frames)
            if output_frames > budget:
                raise VideoDecodeError(
                    f"{self.name}: its timestamps spread {self.frames} frames over {time - self.first_frame_time:.0f} "
                    f"s ({self.where()}), which would repeat each frame about {output_frames / self.frames:.0f} "
                    f"times at {self.output_fps} fps: the frame rate or a timestamp in the file is damaged. "
                    "Re-download the video, or re-encode it with ffmpeg at a fixed frame rate first (e.g. ffmpeg -i "
                    "IN -r 25 -c:v libx264 OUT.mp4)."
                )
        self.frame_time = time

    def _check_packet(self, packet: av.Packet) -> None:
        self.packets += 1
        self.data_packets += packet.size > 0
        self.position = packet.pos if packet.pos is not None and packet.pos >= 0 else None
        if self.positions is not None:
            self.positions.add(self.position)
        time_base = packet.time_base or self.stream.time_base
        decoding = packet.dts if packet.dts is not None else packet.pts
        decoding_time = float(decoding * time_base) if decoding is not None and time_base else None
        if self.pending_corruption is not None:
            seam = decoding_time is not None and (
                decoding_time < self.pending_time - _SEAM_BACKWARD_SECONDS
                or decoding_time > self.pending_time + _SEAM_FORWARD_SECONDS
            )
            if seam:
                self.pending_corruption = None
            elif self.packets - self.pending_packet > _SEAM_WINDOW_PACKETS:
                raise self.pending_corruption
            elif decoding_time is not None:
                self.pending_time = max(self.pending_time, decoding_time)
        timestamp = packet.pts if packet.pts is not None else packet.dts
        if timestamp is not None and time_base:
            self.time = float(timestamp * time_base)
            end = float((timestamp + max(packet.duration or 0, 0)) * time_base)
            self.end_time = end if self.end_time is None else max(self.end_time, end)
        if packet.is_corrupt:
            error = VideoDecodeError(
                f"{self.name}: video packet {self.packets - 1} {self.where()} is incomplete or damaged (the demuxer "
                f"flagged it as corrupt; a truncated file ends like this). {ADVICE}"
            )
            if not (self.discontinuous and decoding_time is not None):
                raise error
            if self.pending_corruption is None:
                self.pending_corruption, self.pending_time = error, decoding_time
                self.pending_packet = self.packets

    def where(self) -> str:
        """Where the last packet read lies, for messages."""
        parts = [f"byte {self.position}"] if self.position is not None else []
        if self.time is not None:
            parts.append(f"{self.time:.2f} s")
        return f"near {', '.join(parts)}" if parts else "at the start of the stream"

    def declared_duration(self) -> float | None:
        """Seconds of video the header declares where that is reliable: Matroska's `DURATION` tag, AVI's length."""
        stream = self.stream
        metadata = getattr(stream, "metadata", None) or {}
        tag = next((value for key, value in metadata.items() if key.upper() == "DURATION"), None)
        if tag is not None:
            return parse_duration_tag(tag)
        if stream.container.format.name == "avi" and stream.frames and stream.time_base:
            return float(stream.frames * stream.time_base)  # AVI: frames counted in units of the time base
        return None

    def finish(self) -> None:
        """After the last packet: packets the file's index lists but the demuxer never returned were lost to damage,
        and a track whose packets stop well short of its declared duration lost its end."""
        if self.pending_corruption is not None:  # the last packet was corrupt: a truncated file
            raise self.pending_corruption
        if self.stream.container.format.name == "avi":
            # An AVI's idx1 lists every non-empty chunk; after damage the demuxer resynchronises and skips some.
            indexed = [entry for entry in self.stream.index_entries if entry.size > 0]
            if len(indexed) > 1 and self.data_packets < len(indexed):
                # An index entry points at the chunk's 8-byte header, a packet at its payload.
                read = self.positions
                lost = next((entry for entry in indexed if entry.pos not in read and entry.pos + 8 not in read), None)
                where = f"; the first lost one is at byte {lost.pos}" if lost is not None else ""
                raise VideoDecodeError(
                    f"{self.name}: the file is damaged: its index lists {len(indexed)} video frames, but only "
                    f"{self.data_packets} could be read (the others are lost in damaged data{where}). {ADVICE}"
                )
        declared = self.declared_duration()
        if declared is None or self.end_time is None:
            return
        if declared - self.end_time > TRUNCATION_TOLERANCE_SECONDS:
            raise VideoDecodeError(
                f"{self.name}: the file is truncated or damaged: its header declares {declared:.2f} s of video, but "
                f"its packets stop at {self.end_time:.2f} s ({self.where()}); the rest cannot be read. Re-download "
                "or re-export the video."
            )


__all__ = ["StreamDamageCheck", "parse_duration_tag", "reason"]
