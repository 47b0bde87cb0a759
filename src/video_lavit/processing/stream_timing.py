"""Frame timestamps as ffmpeg's command line hands them to its filters, and the limit on a video's length.

The reference re-encodes with ffmpeg's command line, whose timestamps are not the decoder's raw ones. What it does,
restated (fftools' demuxer and decoder, default options), and what `CommandLineTimeline` reproduces with PyAV's
packets and frames:

1. Every timestamp is shifted by the file's start time, so the video starts at 0 (in formats with timestamp
   discontinuities, the start time of the streams read: the video's, not an earlier audio stream's).
2. Formats that allow timestamp discontinuities (FFmpeg's `AVFMT_TS_DISCONT`: MPEG-TS/PS, Ogg, raw MPEG-4, FLV
   streams): the next packet's DTS is predicted from the last one (plus its duration, or one frame). A packet more
   than 10 s from the prediction (`-dts_delta_threshold`), or more than 0.1 s before the last DTS, shifts itself and
   every later packet so that the timeline goes on where it was. Recordings joined end to end (`cat a.ts b.ts`) and
   captures whose clock restarts keep all their frames this way; read raw, the `fps` filter would drop every frame
   of the second part (its timestamps lie in the past). In other formats a DTS or PTS more than 30 hours from the
   prediction (`-dts_error_threshold`) is dropped.
3. A frame's time is libavcodec's "best effort" timestamp: its PTS, unless PTS values have gone backwards more often
   than DTS values, then its packet's DTS; a frame with neither follows the previous one by one frame.

Differences from the command line: MPEG-TS timestamp wrap-around is left to libavformat (which corrects it), and only
the video stream is read (the reference's command has no audio output, so its audio packets never reach this logic).

`check_duration` stops the reading of a video whose timeline grows beyond `max_duration` seconds (an endless live
stream, hours of input), with `VideoTooLongError`.
"""

from __future__ import annotations

from fractions import Fraction

import av

from ..errors import VideoTooLongError

MICROSECONDS = 1_000_000  # FFmpeg's AV_TIME_BASE
DTS_DELTA_THRESHOLD = 10 * MICROSECONDS
DTS_ERROR_THRESHOLD = 30 * 3600 * MICROSECONDS
BACKWARDS_TOLERANCE = MICROSECONDS // 10
_TS_DISCONT = av.format.Flags.ts_discont.value


def _round(value: Fraction) -> int:
    """Nearest integer, halves away from zero (FFmpeg's AV_ROUND_NEAR_INF)."""
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


class CommandLineTimeline:
    """Corrects one video stream's packet timestamps and picks its frames' times as ffmpeg's command line does.

    Call `correct_packet` on every packet before it is decoded, in demuxing order, and `frame_pts` on every decoded
    frame, in output order; `frame_pts` returns the frame's time in units of `time_base`, counted from the start of
    the video.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream):
        self.time_base = Fraction(stream.time_base or Fraction(1, 90_000))
        self.discontinuous = bool(container.format.flags & _TS_DISCONT)
        self.start_shift = -int(container.start_time) if container.start_time is not None else 0
        if self.discontinuous and container.start_time is not None and stream.start_time is not None:
            # The command line corrects these formats' start time to the streams it reads: here the video alone.
            self.start_shift = -_round(stream.start_time * Fraction(self.time_base) * MICROSECONDS)
        rate = stream.codec_context.framerate or stream.average_rate or stream.guessed_rate or Fraction(25)
        self.frame_duration = _round(MICROSECONDS / Fraction(rate))
        average_rate = stream.average_rate
        delay = getattr(stream.codec_context, "has_b_frames", 0) or 0
        self.initial_dts = -_round(delay * MICROSECONDS / Fraction(average_rate)) if average_rate else 0
        self.discontinuity_shift = 0  # microseconds added to every later packet
        self.discontinuities = 0
        self.next_dts: int | None = None
        self.last_dts: int | None = None
        self.started = False
        # libavcodec's PTS correction state
        self.faulty_pts = self.faulty_dts = 0
        self.last_frame_pts_seen: int | None = None
        self.last_frame_dts_seen: int | None = None
        # the previous frame's time, for frames without one
        self.previous_time: int | None = None
        self.previous_duration = max(1, _round(1 / (Fraction(average_rate or 25) * Fraction(self.time_base))))

    def _to_microseconds(self, timestamp: int) -> int:
        return _round(timestamp * self.time_base * MICROSECONDS)

    def _from_microseconds(self, value: int) -> int:
        return _round(Fraction(value, MICROSECONDS) / self.time_base)

    def correct_packet(self, packet: av.Packet) -> None:
        """Shift `packet`'s PTS and DTS in place (steps 1 and 2 of the module docstring)."""
        pts, dts = packet.pts, packet.dts
        shift = self._from_microseconds(self.start_shift + self.discontinuity_shift)
        pts = pts + shift if pts is not None else None
        dts = dts + shift if dts is not None else None
        if dts is not None and self.next_dts is not None:
            dts_us = self._to_microseconds(dts)
            delta = dts_us - self.next_dts
            if self.discontinuous:
                if abs(delta) > DTS_DELTA_THRESHOLD or dts_us + BACKWARDS_TOLERANCE < self.last_dts:
                    self.discontinuity_shift -= delta
                    self.discontinuities += 1
                    correction = self._from_microseconds(delta)
                    dts -= correction
                    pts = pts - correction if pts is not None else None
            else:
                if abs(delta) > DTS_ERROR_THRESHOLD:
                    dts = None
                if pts is not None and abs(self._to_microseconds(pts) - self.next_dts) > DTS_ERROR_THRESHOLD:
                    pts = None
        self._predict_next_dts(packet, pts, dts)
        packet.pts, packet.dts = pts, dts

    def _predict_next_dts(self, packet: av.Packet, pts: int | None, dts: int | None) -> None:
        if not self.started:
            self.last_dts = self.initial_dts + (self._to_microseconds(pts) if pts is not None else 0)
            self.started = True
        if self.next_dts is None:
            self.next_dts = self.last_dts
        if dts is not None:
            self.next_dts = self.last_dts = self._to_microseconds(dts)
        self.last_dts = self.next_dts
        if packet.duration:
            self.next_dts += self._to_microseconds(packet.duration)
        else:
            self.next_dts += self.frame_duration

    def frame_pts(self, frame: av.VideoFrame) -> int:
        """The time of `frame` (step 3), in `time_base` units from the start of the video."""
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self.faulty_dts += self.last_frame_dts_seen is not None and dts <= self.last_frame_dts_seen
            self.last_frame_dts_seen = dts
        elif pts is not None:
            self.last_frame_dts_seen = pts
        if pts is not None:
            self.faulty_pts += self.last_frame_pts_seen is not None and pts <= self.last_frame_pts_seen
            self.last_frame_pts_seen = pts
        elif dts is not None:
            self.last_frame_pts_seen = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            time = pts
        elif dts is not None:
            time = dts
        else:
            time = self.previous_time + self.previous_duration if self.previous_time is not None else 0
        self.previous_time = time
        return time


def check_duration(seconds: float | None, max_duration: float | None, name: str, what: str) -> None:
    """Raise `VideoTooLongError` if `seconds` of video exceed `max_duration` (None: no limit).

    `what` says where the length comes from, e.g. "its header declares" or "it holds more than".
    """
    if max_duration is None or seconds is None or seconds <= max_duration:
        return
    raise VideoTooLongError(
        f"{name}: {what} {format_seconds(seconds)} of video, more than max_duration={max_duration:g} s "
        f"({format_seconds(max_duration)}); it was not read further. If the video really is that long, pass a larger "
        "max_duration, or None for no limit (the clips are spread over the whole video, so all of it is read). For "
        "a live or endless stream, cut the part you want first (e.g. ffmpeg -i IN -t 600 -c copy OUT.ts). A damaged "
        "header or timestamp can also claim such a length: then re-download or re-encode the video."
    )


def format_seconds(seconds: float) -> str:
    """`3 h 59 min`-style text for messages."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    parts = [(value, unit) for value, unit in [(days, "d"), (hour, "h"), (minute, "min"), (second, "s")] if value]
    return " ".join(f"{value} {unit}" for value, unit in parts[:2])


__all__ = ["CommandLineTimeline", "check_duration", "format_seconds"]
