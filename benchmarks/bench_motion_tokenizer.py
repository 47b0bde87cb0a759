"""Speed and memory of the motion tokenizer: clips per second for `encode` and `decode`, fp32 and bf16, on CPU or GPU.

The model's one performance mechanism, the opt-in chunked transformer blocks (`enable_chunked_blocks`, see
`video_lavit/media_media_tokenizers/chunked_blocks.py`), measured on and off over the same weights in the same run:

- `whole`: the model as defined (every block in one piece): the baseline;
- `chunked`: the same model after `enable_chunked_blocks(model)` (16 MiB chunks);
- `compiled`: the baseline with every transformer block `torch.compile`d (`block.compile()`; fp32 only on CPU,
  every dtype on a GPU). Its compilation happens in the first call at each batch size; that time is reported
  separately (`compile s`, the first encode plus the first decode, minus one steady-state call of each) and is not
  part of clips/s.

The token ids must be identical (the script says if they are not) and `decode` is compared with the baseline (max
abs difference). Every implementation gets one warm-up call per batch size and operation; then rounds alternate
between the implementations and each keeps its fastest round, so a burst of other load on the machine does not
decide the comparison. `mem /` is the baseline's peak memory divided by the chunked model's.

    python benchmarks/bench_motion_tokenizer.py                # full: fp32 batch 1 4 16, bf16 batch 1 4 (long)
    python benchmarks/bench_motion_tokenizer.py --quick        # fp32 batch 1 4 16, one round, no compile
    python benchmarks/bench_motion_tokenizer.py --quick --size small  # small random model: smoke run
    python benchmarks/bench_motion_tokenizer.py --model converted/motion_tokenizer  # real weights
    python benchmarks/bench_motion_tokenizer.py --device cuda  # GPU: bf16 and fp32 at batch 1 4 16, all compiled

`--device` takes any torch device string (`cpu`, `cuda`, `cuda:1`). The model and the inputs are moved there (the
inputs are drawn on the CPU with a fixed seed first, so every device sees the same clips). On a GPU the defaults
change: bf16 comes first and uses the fp32 batch sizes (`--bf16-batch-sizes` still overrides them).

Peak memory on the CPU is the largest resident set size seen (sampled every 5 ms) during the fastest timed call,
minus the size before it (weights, and any memory kept from earlier calls, are not counted). On CUDA it is
`torch.cuda.max_memory_allocated()` during that call (the peak statistics are reset just before it) minus the GPU
memory allocated when the call started, and the columns say `GPU MB`. On CUDA every timed call is bracketed by
`torch.cuda.synchronize()`.
"""

from __future__ import annotations

import argparse
import copy
from functools import partial

import torch
from _measure import cpu_name, timed

from video_lavit import VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig
from video_lavit.media_tokenizers.chunked_blocks import enable_chunked_blocks
from video_lavit.media_tokenizers.layers import SpatioTemporalBlock

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SMALL = dict(hidden_size=64, blocks_per_stage=1, codebook_size=64)
KINDS = ("whole", "chunked", "compiled")


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
    parser.add_argument("--no-compile", action="store_true", help="skip the `compiled` column")
    parser.add_argument("--quick", action="store_true", help="one round, no compile (CPU: fp32 unless --dtypes)")
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
        args.repeats, args.no_compile = 1, True
        if not cuda:
            args.dtypes = args.dtypes or ["fp32"]  # bf16 is very slow on AVX2-only CPUs (minutes per call)
    args.dtypes = args.dtypes or (["bf16", "fp32"] if cuda else ["fp32", "bf16"])
    if args.bf16_batch_sizes is None:
        args.bf16_batch_sizes = args.batch_sizes if cuda else [1, 4]
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.model:
        whole = VideoLaVITMotionTokenizer.from_pretrained(args.model)
    else:
        whole = VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerConfig(**(SMALL if args.size == "small" else {})))
    whole.eval().to(device)
    parameters = sum(p.numel() for p in whole.parameters())
    name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    print(f"device: {device} ({name})")
    print(f"motion tokenizer: {parameters:,} parameters, {torch.get_num_threads()} threads, torch {torch.__version__}")
    memory = "GPU MB" if cuda else "MB"
    width = 11 if cuda else 8
    header = (
        f"{'dtype':<5} {'batch':>5} {'op':<7} {'whole clip/s':>12} {'chunk clip/s':>12} {'chunk x':>7} "
        f"{'comp clip/s':>11} {'comp x':>7} {'compile s':>9} "
        + " ".join(f"{kind[:5] + ' ' + memory:>{width + 3}}" for kind in KINDS)
        + f" {'mem /':>6}  check"
    )
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        whole.to(dtype)
        models = {"whole": whole, "chunked": copy.deepcopy(whole)}
        enable_chunked_blocks(models["chunked"])
        if (dtype == torch.float32 or cuda) and not args.no_compile:
            models["compiled"] = copy.deepcopy(whole)
            for module in models["compiled"].modules():
                if isinstance(module, SpatioTemporalBlock):
                    module.compile()
        batch_sizes = args.batch_sizes if dtype == torch.float32 else args.bf16_batch_sizes
        for batch_size in batch_sizes:
            # Drawn on the CPU, so that every device gets the same clips.
            motion = torch.randn(batch_size, 2, 24, 20, 36, generator=torch.Generator().manual_seed(1)) * 3
            motion = motion.to(device=device, dtype=dtype)
            results: dict = {kind: {} for kind in models}
            indices = None
            # Warm-up (and, for `compiled`, compilation) at this batch size, then alternating timed rounds.
            for round_index in range(args.repeats + 1):
                for kind, model in models.items():
                    with torch.inference_mode():
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
                row = results["whole"][op]
                line = f"{dtype_name:<5} {batch_size:>5} {op:<7} {batch_size / row[0]:>12.3f} "
                seconds = results["chunked"][op][0]
                line += f"{batch_size / seconds:>12.3f} {row[0] / seconds:>6.2f}x "
                if "compiled" in results:
                    seconds = results["compiled"][op][0]
                    line += f"{batch_size / seconds:>11.3f} {row[0] / seconds:>6.2f}x "
                    if op == "encode":
                        compile_seconds = sum(
                            results["compiled"][f"first {name}"] - results["compiled"][name][0]
                            for name in ("encode", "decode")
                        )
                        line += f"{compile_seconds:>9.1f} "
                    else:
                        line += f"{'':>9} "
                else:
                    line += f"{'-':>11} {'-':>7} {'-':>9} "
                line += " ".join(
                    f"{results[kind][op][1]:>{width + 3}.0f}" if kind in results else f"{'-':>{width + 3}}"
                    for kind in KINDS
                )
                line += f" {row[1] / max(results['chunked'][op][1], 1.0):>5.1f}x"
                checks = []
                reference = results["whole"][f"{op} output"]
                for kind in ("chunked", "compiled"):
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
