"""Speed and memory of the motion tokenizer: clips per second for `encode` and `decode`, fp32 and bf16, on CPU or GPU.

Three implementations over the same weights, measured in the same run:

- `base`: the straightforward computation the reference does: attention as `softmax(q k^T * scale) v` with
  explicit matrices, transposing copies between the spatial and temporal attention, an MLP whose GELU allocates
  its own output, channels-first Conv3d down-sampling, and the decoder's nearest upsampling materialised before
  each Conv3d;
- `ours`: the model as shipped, in eager mode (`scaled_dot_product_attention`, no transposing copies, decoder
  convolutions on the original grid, see `MotionUpsample`; on the CPU the transformer blocks run in chunks of
  frames and positions, see `SpatioTemporalBlock`, the GELU runs in place, see `Mlp`, and the convolutions run as
  Conv2d per temporal tap on the channels-last grid, see `conv3d_frames`);
- `compiled`: the same after `model.compile()` (torch.compile of the transformer blocks; fp32 only on CPU, every
  dtype on a GPU). Its compilation happens in the first call at each batch size; that time is reported separately
  (`compile s`, the first encode plus the first decode, minus one steady-state call of each) and is not part of
  clips/s.

The token ids of all three must be identical (the script says if they are not) and `decode` is compared with the
base (max abs difference). Every implementation gets one warm-up call per batch size and operation; then rounds
alternate between the implementations and each keeps its fastest round, so a burst of other load on the machine
does not decide the comparison.

    python benchmarks/bench_motion_tokenizer.py                # full: fp32 batch 1 4 16, bf16 batch 1 4 (long)
    python benchmarks/bench_motion_tokenizer.py --quick        # fp32 batch 1 4, one round (~8 min on 2 cores)
    python benchmarks/bench_motion_tokenizer.py --quick --dtypes bf16   # bf16 batch 1 (slow without AVX512-BF16)
    python benchmarks/bench_motion_tokenizer.py --quick --size small --no-compile  # small random model: smoke run
    python benchmarks/bench_motion_tokenizer.py --model converted/motion_tokenizer  # real weights
    python benchmarks/bench_motion_tokenizer.py --device cuda  # GPU: bf16 and fp32 at batch 1 4 16, all compiled

`--device` takes any torch device string (`cpu`, `cuda`, `cuda:1`). The model and the inputs are moved there (the
inputs are drawn on the CPU with a fixed seed first, so every device sees the same clips). On a GPU the defaults
change: bf16 comes first and uses the fp32 batch sizes (`--bf16-batch-sizes` still overrides them), `--quick`
keeps bf16, and the `compiled` column covers bf16 too.

Peak memory on the CPU is the largest resident set size seen (sampled every 5 ms) during the fastest timed call,
minus the size before it (weights, and any memory kept from earlier calls, are not counted). On CUDA it is
`torch.cuda.max_memory_allocated()` during that call (the peak statistics are reset just before it) minus the GPU
memory allocated when the call started (tensors only; blocks cached by the allocator are not counted), and the
columns say `GPU MB`. On CUDA every timed call is bracketed by `torch.cuda.synchronize()`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from functools import partial

import torch
from _measure import cpu_name, timed

from video_lavit import VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig
from video_lavit.tokenizers.layers import Mlp, SpatioTemporalBlock
from video_lavit.tokenizers.layers import QVBiasSelfAttention as MotionAttention
from video_lavit.tokenizers.modeling_motion_tokenizer import MotionDownsample, MotionUpsample

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SMALL = dict(hidden_size=64, blocks_per_stage=1, codebook_size=64)


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


def reference_block(self: SpatioTemporalBlock, hidden_states: torch.Tensor) -> torch.Tensor:
    """The reference's block: rearrange (copy) to frames-major and back around the temporal attention."""
    batch, frames, positions, hidden = hidden_states.shape
    spatial = hidden_states.reshape(batch * frames, positions, hidden)
    spatial = spatial + self.spatial_attention(self.spatial_norm(spatial))
    temporal = spatial.reshape(batch, frames, positions, hidden).transpose(1, 2).reshape(-1, frames, hidden)
    temporal = temporal + self.temporal_attention(self.temporal_norm(temporal))
    temporal = temporal + self.mlp(self.mlp_norm(temporal))
    return temporal.reshape(batch, positions, frames, hidden).transpose(1, 2)


def reference_mlp(self: Mlp, hidden_states: torch.Tensor) -> torch.Tensor:
    """The reference's MLP: the GELU allocates its own output."""
    return self.fc2(self.act(self.fc1(hidden_states)))


def reference_downsample(self: MotionDownsample, hidden_states: torch.Tensor) -> torch.Tensor:
    """The reference's down-sampling: pad, then one Conv3d over the channels-first grid."""
    hidden_states = self.conv(torch.nn.functional.pad(hidden_states.permute(0, 4, 1, 2, 3), self.padding))
    return hidden_states.permute(0, 2, 3, 4, 1)


@contextlib.contextmanager
def implementation(kind: str):
    """Swap in the base computation (class-wide) for the duration of the block; `ours`/`compiled`: unchanged."""
    patches = {
        (MotionAttention, "forward"): reference_attention,
        (SpatioTemporalBlock, "forward"): reference_block,
        # so that `run_spatio_temporal_blocks` calls each block in turn (through `reference_block`)
        (SpatioTemporalBlock, "_runs_in_chunks"): lambda self, hidden_states: False,
        (MotionUpsample, "forward"): MotionUpsample.forward_upsampled,
        (MotionDownsample, "forward"): reference_downsample,
        (Mlp, "forward"): reference_mlp,
    }
    originals = {key: getattr(*key) for key in patches}
    if kind == "base":
        for (owner, name), function in patches.items():
            setattr(owner, name, function)
    try:
        yield
    finally:
        for (owner, name), function in originals.items():
            setattr(owner, name, function)


def encode_indices(model: VideoLaVITMotionTokenizer, motion: torch.Tensor) -> torch.Tensor:
    return model.encode(motion).indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a converted motion tokenizer folder (default: random full-size weights)")
    parser.add_argument("--size", choices=("full", "small"), default="full", help="random model size (small: smoke)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16], help="fp32 batch sizes")
    parser.add_argument(
        "--bf16-batch-sizes", type=int, nargs="+", default=None, help="default: 1 4 on CPU, --batch-sizes on CUDA"
    )
    parser.add_argument(
        "--dtypes", nargs="+", choices=sorted(DTYPES), default=None, help="default: fp32 bf16 (CUDA: bf16 fp32)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="alternating timed rounds; the fastest counts")
    parser.add_argument("--no-compile", action="store_true", help="skip the `model.compile()` column")
    parser.add_argument("--quick", action="store_true", help="batch 1 4, one round (CPU: fp32 unless --dtypes)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {args.device}: only cpu and cuda devices are supported")
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available to this torch ({torch.__version__})")
    if args.model and args.size != "full":
        parser.error("--size applies to the random model, not to --model")
    if args.quick:
        args.batch_sizes, args.repeats = [1, 4], 1
        args.bf16_batch_sizes = None if cuda else [1]
        if not cuda:
            args.dtypes = args.dtypes or ["fp32"]  # bf16 is very slow on AVX2-only CPUs (minutes per call)
    args.dtypes = args.dtypes or (["bf16", "fp32"] if cuda else ["fp32", "bf16"])
    if args.bf16_batch_sizes is None:
        args.bf16_batch_sizes = args.batch_sizes if cuda else [1, 4]
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.model:
        base = VideoLaVITMotionTokenizer.from_pretrained(args.model)
    else:
        base = VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerConfig(**(SMALL if args.size == "small" else {})))
    base.eval().to(device)
    parameters = sum(p.numel() for p in base.parameters())
    name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    print(f"device: {device} ({name})")
    print(f"motion tokenizer: {parameters:,} parameters, {torch.get_num_threads()} threads, torch {torch.__version__}")
    memory = "GPU MB" if cuda else "MB"
    width = 11 if cuda else 8
    header = (
        f"{'dtype':<5} {'batch':>5} {'op':<7} {'base clip/s':>11} {'ours clip/s':>11} {'ours x':>7} "
        f"{'comp clip/s':>11} {'comp x':>7} {'compile s':>9} "
        + " ".join(f"{kind + ' ' + memory:>{width}}" for kind in ("base", "ours", "comp"))
        + "  check"
    )
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        models = {"base": base.to(dtype), "ours": base}  # the same module: `base` only patches the computation
        if (dtype == torch.float32 or cuda) and not args.no_compile:
            models["compiled"] = copy.deepcopy(base)
            models["compiled"].compile()
        batch_sizes = args.batch_sizes if dtype == torch.float32 else args.bf16_batch_sizes
        for batch_size in batch_sizes:
            # Drawn on the CPU, so that every device gets the same clips.
            motion = torch.randn(batch_size, 2, 24, 20, 36, generator=torch.Generator().manual_seed(1)) * 3
            motion = motion.to(device)
            results: dict = {kind: {} for kind in models}
            indices = None
            # Warm-up (and, for `compiled`, compilation) at this batch size, then alternating timed rounds.
            for round_index in range(args.repeats + 1):
                for kind, model in models.items():
                    with implementation(kind), torch.inference_mode():
                        encode = timed(partial(encode_indices, model, motion), device)
                        indices = encode[2] if indices is None else indices
                        decode = timed(partial(model.decode, indices), device)
                    for op, value in (("encode", encode), ("decode", decode)):
                        if round_index == 0:
                            results[kind][f"first {op}"] = value[0]
                            results[kind][f"{op} output"] = value[2]
                            continue
                        best = results[kind].get(op)
                        results[kind][op] = value if best is None or value[0] < best[0] else best
            for op in ("encode", "decode"):
                row = results["base"][op]
                line = f"{dtype_name:<5} {batch_size:>5} {op:<7} {batch_size / row[0]:>11.3f} "
                for kind in ("ours", "compiled"):
                    if kind in results:
                        seconds = results[kind][op][0]
                        line += f"{batch_size / seconds:>11.3f} {row[0] / seconds:>6.2f}x "
                    else:
                        line += f"{'-':>11} {'-':>7} "
                if "compiled" in results:
                    compile_seconds = sum(
                        results["compiled"][f"first {name}"] - results["compiled"][name][0]
                        for name in ("encode", "decode")
                    )
                    line += f"{compile_seconds:>9.1f} " if op == "encode" else f"{'':>9} "
                else:
                    line += f"{'-':>9} "
                line += " ".join(
                    f"{results[kind][op][1]:>{width}.0f}" if kind in results else f"{'-':>{width}}"
                    for kind in ("base", "ours", "compiled")
                )
                checks = []
                reference = results["base"][f"{op} output"]
                for kind in ("ours", "compiled"):
                    if kind not in results:
                        continue
                    output = results[kind][f"{op} output"]
                    if op == "encode":
                        agreement = (output == reference).float().mean().item()
                        same = "identical" if agreement == 1 else f"{agreement:.1%} equal"
                        checks.append(f"{kind} tokens {same}")
                    else:
                        difference = (output.float() - reference.float()).abs().max().item()
                        checks.append(f"{kind} max|diff| {difference:.1e}")
                print(f"{line}  {', '.join(checks)}", flush=True)


if __name__ == "__main__":
    main()
