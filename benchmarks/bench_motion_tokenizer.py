"""Speed and memory of the motion tokenizer: clips per second for `encode` and `decode`, fp32 and bf16.

Baseline, measured in the same run on the same weights: the same model with its attention computed the
straightforward way the reference does (`softmax(q k^T * scale) v` with explicit matrices) instead of
`scaled_dot_product_attention`. The fp32 token ids of both must be identical; the script says if they are not.

    python benchmarks/bench_motion_tokenizer.py                         # full size, batch 1 4 16, fp32 and bf16
    python benchmarks/bench_motion_tokenizer.py --batch-sizes 1 --dtypes fp32   # quick
    python benchmarks/bench_motion_tokenizer.py --model converted/motion_tokenizer  # real weights

Peak memory is the largest resident set size seen (sampled every 5 ms) during each measurement, minus the size
before it.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from functools import partial

import torch

from video_lavit import VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig
from video_lavit.tokenizers.modeling_motion_tokenizer import MotionAttention

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def reference_attention(self: MotionAttention, hidden_states: torch.Tensor) -> torch.Tensor:
    """The reference's attention math, with explicit score matrices."""
    batch, seq_len, hidden = hidden_states.shape
    bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
    qkv = torch.nn.functional.linear(hidden_states, self.qkv.weight, bias)
    qkv = qkv.reshape(batch, seq_len, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    query, key, value = qkv[0], qkv[1], qkv[2]
    scores = (query * query.shape[-1] ** -0.5) @ key.transpose(-2, -1)
    attended = scores.softmax(dim=-1) @ value
    return self.proj(attended.transpose(1, 2).reshape(batch, seq_len, -1))


@contextlib.contextmanager
def attention(kind: str):
    original = MotionAttention.forward
    if kind == "reference":
        MotionAttention.forward = reference_attention
    try:
        yield
    finally:
        MotionAttention.forward = original


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


@contextlib.contextmanager
def peak_memory(result: dict):
    start, peak, running = rss_bytes(), [rss_bytes()], [True]

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


def measure(function) -> tuple[float, dict, object]:
    """Seconds of one call (after a warm-up call), peak memory, and the output."""
    memory: dict = {}
    with torch.inference_mode(), peak_memory(memory):
        function()
        started = time.perf_counter()
        output = function()
        seconds = time.perf_counter() - started
    return seconds, memory, output


def encode_indices(model: VideoLaVITMotionTokenizer, motion: torch.Tensor) -> torch.Tensor:
    return model.encode(motion).indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a converted motion tokenizer folder (default: random full-size weights)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.model:
        base = VideoLaVITMotionTokenizer.from_pretrained(args.model)
    else:
        base = VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerConfig())
    base.eval()
    parameters = sum(p.numel() for p in base.parameters())
    print(f"motion tokenizer: {parameters:,} parameters, {torch.get_num_threads()} threads")
    header = (
        f"{'dtype':<5} {'batch':>5} {'op':<7} {'ours clip/s':>11} {'ref clip/s':>10} {'speed-up':>8} "
        f"{'ours MB':>8} {'ref MB':>8}  tokens"
    )
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        model = base.to(DTYPES[dtype_name])
        for batch_size in args.batch_sizes:
            motion = torch.randn(batch_size, 2, 24, 20, 36, generator=torch.Generator().manual_seed(1)) * 3
            # Rounds alternate between the two implementations; each keeps its fastest round, so a burst of other
            # load on the machine does not decide the comparison.
            results: dict = {"ours": {}, "reference": {}}
            for _ in range(args.repeats):
                for kind in ("ours", "reference"):
                    with attention(kind):
                        encode = measure(partial(encode_indices, model, motion))
                        decode = measure(partial(model.decode, encode[2]))
                    for op, value in (("encode", encode), ("decode", decode)):
                        best = results[kind].get(op)
                        results[kind][op] = value if best is None or value[0] < best[0] else best
            same = torch.equal(results["ours"]["encode"][2], results["reference"]["encode"][2])
            agreement = (results["ours"]["encode"][2] == results["reference"]["encode"][2]).float().mean().item()
            for op in ("encode", "decode"):
                ours, ref = results["ours"][op], results["reference"][op]
                tokens = ("identical" if same else f"{agreement:.1%} equal") if op == "encode" else ""
                print(
                    f"{dtype_name:<5} {batch_size:>5} {op:<7} {batch_size / ours[0]:>11.3f} "
                    f"{batch_size / ref[0]:>10.3f} {ref[0] / ours[0]:>7.2f}x "
                    f"{ours[1]['peak_mb']:>8.0f} {ref[1]['peak_mb']:>8.0f}  {tokens}"
                )


if __name__ == "__main__":
    main()
