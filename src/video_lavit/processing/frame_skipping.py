"""Leaving out the decoding of source frames that the re-encoding drops (a speed mechanism of the first pass).

At 6 fps the re-encoding keeps about one source frame in four of a 25 fps video; the `fps` filter drops the others,
which were decoded for nothing. H.264 and HEVC encoders code many frames as non-reference frames, from which no other
frame is predicted (with libx264's default B-frames, half of all frames and half of the decoding time), so the
decoder can leave them out (`skip_frame = "NONREF"`) without changing any other frame. `SourceFrameSkipper` asks it
to for a packet only when the `fps` filter will drop that frame whatever its pixels, and gives the filter a
placeholder with the frame's timestamps in its place (the next decoded frame, re-timed), so the filter sees the same
timeline and keeps the same frames: the re-encoded stream is byte-identical.

Why the filter drops the frame: with the default rounding, the `fps` filter rounds each frame's time to the output
grid (r); when frame k becomes the oldest frame it holds, its next output tick n is at least r_k, and it drops frame
k as soon as the next frame has r_{k+1} <= n. So r_{k+1} <= r_k drops frame k. A packet is skipped only if an earlier
packet of the stream has a later time with the same r (the next frame in display order lies between the two, so it
shares that r); libx264's non-reference B-frames always have such a packet before them, the reference frames they sit
between.

The argument needs frames that come out of the decoder in the order of their times, which is checked on every
decoded frame, and each placeholder is checked to be followed by a frame with r_{k+1} <= r_k. If a check fails after
a frame was skipped, the first pass cannot be trusted and is run again without skipping (`SkippingNotApplicable`);
this happens only with damaged timestamps. Skipping is used for H.264 and HEVC sources whose container has no
timestamp discontinuities, and only for inputs that can be read a second time (paths and bytes).

Difference from decoding every frame: damage inside a skipped frame is not seen (the frame cannot reach a clip).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction

import av

from .stream_timing import _round

# Decoders whose "skip non-reference frames" setting changes no other frame.
SKIPPING_CODECS = frozenset({"h264", "hevc"})
# How many of the latest packet times are searched for one with the same output tick.
_RECENT_PACKETS = 32
_TS_DISCONT = av.format.Flags.ts_discont.value


class SkippingNotApplicable(Exception):
    """A frame was skipped, but the stream turned out not to meet the conditions (see the module docstring)."""


def skipping_applies(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> bool:
    """Whether `SourceFrameSkipper` may be used on `stream`."""
    return stream.codec_context.name in SKIPPING_CODECS and not container.format.flags & _TS_DISCONT


class SourceFrameSkipper:
    """Decides, packet by packet, which frames the decoder leaves out, and puts placeholders in their place.

    Call `before_decode(packet)` on every packet (after its timestamps are corrected) just before it is decoded,
    iterate `frames(decoded)` over what it decoded to, and call `pushed(pts, placeholder)` with the time each frame is
    given to the filter (in `time_base` units); `finish()` after the last frame.
    """

    def __init__(self, codec_context: av.codec.context.CodecContext, time_base: Fraction, fps: int):
        self.codec_context = codec_context
        self.scale = Fraction(time_base) * fps
        self.recent_times: deque[int] = deque(maxlen=_RECENT_PACKETS)
        self.requested: set[int] = set()  # packet times asked to be skipped and not yet accounted for
        self.skipped = 0
        self.enabled = True
        self.last_time: int | None = None
        self.awaiting_tick: int | None = None  # the tick the frame after a placeholder must not exceed

    def _tick(self, pts: int) -> int:
        return _round(pts * self.scale)

    def before_decode(self, packet: av.Packet) -> None:
        pts = packet.pts
        skip = False
        if self.enabled and self.last_time is not None and pts is not None and packet.dts is not None:
            if packet.size and not packet.is_corrupt and not packet.is_discard:
                tick = self._tick(pts)
                skip = any(time > pts and self._tick(time) == tick for time in self.recent_times)
        if pts is not None:
            self.recent_times.append(pts)
        if skip:
            self.requested.add(pts)
        self.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"

    def frames(self, decoded: list[av.VideoFrame]) -> Iterator[tuple[av.VideoFrame, bool]]:
        """The decoded frames, each preceded by placeholders for the skipped frames before it: (frame, placeholder)."""
        for frame in decoded:
            time = frame.pts
            if time is None or (self.last_time is not None and time <= self.last_time):
                self._out_of_order()
                yield frame, False
                continue
            self.last_time = time
            self.requested.discard(time)  # a reference frame: decoded although asked to be skipped
            skipped = sorted(pts for pts in self.requested if pts < time)
            if skipped:
                dts = frame.dts
                for pts in skipped:
                    self.requested.discard(pts)
                    self.skipped += 1
                    frame.pts = frame.dts = pts
                    yield frame, True
                frame.pts, frame.dts = time, dts
            yield frame, False

    def _out_of_order(self) -> None:
        if self.skipped or self.requested:
            raise SkippingNotApplicable("frames come out of the decoder out of the order of their times")
        self.enabled = False

    def pushed(self, pts: int, placeholder: bool) -> None:
        tick = self._tick(pts)
        if self.awaiting_tick is not None and tick > self.awaiting_tick:
            raise SkippingNotApplicable("the filter would have kept a skipped frame")
        self.awaiting_tick = tick if placeholder else None

    def finish(self) -> None:
        if self.requested or self.awaiting_tick is not None:
            raise SkippingNotApplicable("the stream ends with a skipped frame")


__all__ = ["SKIPPING_CODECS", "SkippingNotApplicable", "SourceFrameSkipper", "skipping_applies"]
