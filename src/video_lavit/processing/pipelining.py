"""Threads that let the video reader's decoders and encoder work at once (a speed mechanism).

PyAV lets go of the GIL while FFmpeg decodes or encodes, so Python threads run FFmpeg's work in parallel. Two places
of `VideoClipReader` use this:

- `EncoderThread`: the first pass decodes the source, filters it to 6 fps and encodes it to MPEG-4. Done one frame
  after another, the decoder waits while a frame is encoded and the encoder while the next is decoded; with the
  encoder on a thread of its own, both work at once.
- `prefetch`: the clips are decoded from the spooled stream, each from its own I-frame with its own decoder, so
  the next clips are decoded on worker threads while the caller works on the current one.

Neither changes a result: the encoder gets the same frames in the same order, and each clip is decoded as it would
be alone and handed out in order; clip errors are raised when their clip's turn comes. On 2 cores, a 720p minute
is read 1.38x faster than without them (`benchmarks/bench_video_processing.py`, rows (b) and (b'')).
`VideoClipReader(..., pipeline=False)` (the video processor's `pipeline` option) starts no thread of its own (FFmpeg's
decoder and encoder threads still run), for when every core already runs a reader of its own
(`datasets.Dataset.map(num_proc=cores)`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

import av

Item = TypeVar("Item")
Result = TypeVar("Result")

# Frames waiting for the encoder; 4 frames of 720p YUV are 5.5 MB.
_MAX_PENDING = 4
# Most clips decoded ahead of the caller (each holds a few decoded frames while it is decoded).
MAX_PREFETCH = 4
_STOP = object()


class EncoderThread:
    """Calls `encode(frame)` for each frame given to `put`, in order, on a thread of its own.

    `finish()` passes `None` last (the encoder's flush), waits for the thread and raises what `encode` raised; a
    failure of `encode` also surfaces at the next `put`. `close()` stops the thread, dropping the frames still
    waiting (on errors); `error` then tells whether `encode` had failed.
    """

    def __init__(self, encode: Callable[[av.VideoFrame | None], None]):
        self._encode = encode
        self._queue: queue.Queue = queue.Queue(maxsize=_MAX_PENDING)
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="video-lavit-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is _STOP:
                return
            # After a failure or once closing, frames are taken and dropped, so that `put` never blocks.
            if self._error is None and not self._closing:
                try:
                    self._encode(frame)
                except BaseException as error:  # noqa: BLE001 - raised again in the calling thread
                    self._error = error

    @property
    def error(self) -> BaseException | None:
        """What `encode` raised, if it failed."""
        return self._error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frame: av.VideoFrame) -> None:
        self._raise()
        self._queue.put(frame)

    def finish(self) -> None:
        self._queue.put(None)
        self._stop()
        self._raise()

    def close(self) -> None:
        """Stop the thread; frames still waiting are dropped."""
        self._closing = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


def prefetch_workers() -> int:
    """Threads `prefetch` uses: one per core, at most `MAX_PREFETCH`."""
    return min(MAX_PREFETCH, os.cpu_count() or 1)


def prefetch(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """Yield `function(item)` for each item, in order, computing up to `workers` results ahead on threads.

    An exception of `function` is raised when its item's turn comes; leaving the loop early cancels what has not
    started and waits for what has.
    """
    items = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix="video-lavit-clips") as executor:
        pending = deque(executor.submit(function, item) for item in islice(items, workers))
        try:
            while pending:
                result = pending.popleft().result()
                pending.extend(executor.submit(function, item) for item in islice(items, 1))
                yield result
        finally:
            for future in pending:
                future.cancel()


__all__ = ["MAX_PREFETCH", "EncoderThread", "prefetch", "prefetch_workers"]
