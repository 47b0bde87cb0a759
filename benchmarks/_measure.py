"""Measurement helpers shared by the benchmark scripts in this folder: the CPU's name and flags, the process's
resident set size, and the time and peak memory of one call, on the CPU or a CUDA device.

- `cpu_info()` / `cpu_name()`: the CPU model from `/proc/cpuinfo` (and its flags, e.g. to detect native bf16);
- `rss_bytes()`: the resident set size from `/proc/self/statm`;
- `release_freed_memory()`: glibc `malloc_trim`, so that freed heap pages do not hide the next call's RSS increase;
- `synchronize(device)`: `torch.cuda.synchronize` on CUDA, nothing on the CPU;
- `peak_memory(result, device)`: a context manager that stores the peak memory of its block, in MB above the
  memory in use at its start, in `result["peak_mb"]`;
- `timed(function, device)`: seconds, peak memory (MB) and output of one call.

Peak memory on the CPU is the largest resident set size seen (sampled every 5 ms by a thread) during the block,
minus the size before it, measured after `malloc_trim`. On CUDA it is `torch.cuda.max_memory_allocated()` during the
block (the peak statistics are reset just before it) minus `torch.cuda.memory_allocated()` at its start (tensors
only; blocks cached by the allocator are not counted), and the block is bracketed by `torch.cuda.synchronize()`.

The scripts are run as `python benchmarks/<script>.py`; Python puts the script's folder first on `sys.path`, so
`from _measure import ...` works without `python -m` or an installed package.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import threading
import time

import torch


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and its flags (an empty set where `/proc/cpuinfo` is not readable)."""
    name, flags = platform.processor() or "unknown", set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return name, flags


def cpu_name() -> str:
    """The CPU's model name."""
    return cpu_info()[0]


def rss_bytes() -> int:
    """The process's resident set size in bytes."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def release_freed_memory() -> None:
    """Give the C heap's freed pages back to the OS (glibc `malloc_trim`), so that an RSS increase is not hidden by
    memory an earlier call freed but the allocator kept."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def synchronize(device: torch.device) -> None:
    """Wait for the queued GPU work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def peak_memory(result: dict, device: torch.device):
    """`result["peak_mb"]`: the peak memory during the block above the memory in use at its start; GPU memory (the
    CUDA caching allocator's statistics) on CUDA, the process's resident set size (sampled every 5 ms, after
    `malloc_trim`) otherwise."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        try:
            yield
        finally:
            synchronize(device)
            result["peak_mb"] = (torch.cuda.max_memory_allocated(device) - start) / 2**20
        return
    release_freed_memory()
    start = rss_bytes()
    peak, running = [start], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        running[0] = False
        thread.join()
        result["peak_mb"] = (max(peak[0], rss_bytes()) - start) / 2**20


def timed(function, device: torch.device) -> tuple[float, float, object]:
    """Seconds of one call (the GPU's queued work included), its peak memory increase in MB (GPU memory on CUDA,
    RSS otherwise, see `peak_memory`), and its output. The autograd mode is the caller's."""
    memory: dict = {}
    with peak_memory(memory, device):
        synchronize(device)
        started = time.perf_counter()
        output = function()
        synchronize(device)
        seconds = time.perf_counter() - started
    return seconds, memory["peak_mb"], output
