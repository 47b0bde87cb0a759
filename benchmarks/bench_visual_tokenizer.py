"""Speed and memory of the keyframe tokenizer: images per second for `encode_features` and `tokenize`, fp32 and bf16.
On the CPU by default; `--device cuda` runs the same measurements on a GPU.

Baseline, measured in the same run on the same weights and images: a plain per-image loop, i.e. the same model
called on one image at a time (`model.tokenize(pixels[i : i + 1])` for each i), which is what a user of the
reference's batch-size-1 code does. "Ours" is one batched call on all the images. Rounds alternate between the two
(and which goes first), a warm-up round is excluded and the median of `--rounds` rounds counts, so other load on
the machine hits both equally. Every configuration also checks that the batched outputs equal the per-image ones:
the same `num_tokens`, identical code indices (`tokenize`), the largest absolute feature difference
(`encode_features`). Keep decisions use `selection="argmax"` (deterministic).

    python benchmarks/bench_visual_tokenizer.py --quick                        # small model, 1 round (< 1 min)
    python benchmarks/bench_visual_tokenizer.py                                # full size, batch 1 8, fp32 bf16
    python benchmarks/bench_visual_tokenizer.py --dtypes fp32 --rounds 2       # full size, fp32 only
    python benchmarks/bench_visual_tokenizer.py --device cuda --rounds 10      # full size on a GPU

`--device` takes a torch device string (`cpu`, `cuda`, `cuda:1`). The weights are drawn on the CPU (with a CPU
generator, so they are the same for every device) and moved to the device; the images too. The keep-ratio
calibration (below) then runs on the device. On CUDA the default order of `--dtypes` is bf16, then fp32.

The full-size model is the real configuration (`VideoLaVITVisualTokenizerConfig()`, 1.42B parameters) with random
weights: N(0, 0.02) tensors, LayerNorms at 1 / 0, an l2-normalised codebook, and the token predictor's last layer
scaled and shifted so that about half of the patches of the benchmark images are kept (a different count per image).
The mean kept count is printed.

Peak memory on the CPU is the largest resident set size seen (sampled every 5 ms) during each call, minus the size
before it; on CUDA it is `torch.cuda.max_memory_allocated()` during the call (the peak statistics are reset just
before it) minus the GPU memory allocated when it started (the columns then say `GPU MB`). The largest over the
rounds is reported. Warm-up calls count, as the first call of a process pays the allocations. On CUDA every timed
call is bracketed by `torch.cuda.synchronize()`.

bf16 on CPUs without native bf16 support (no `avx512_bf16` / `amx_bf16` flag) is emulated and much slower than
fp32; the script says so at the top. On a machine busy with other work, `--threads 1` avoids the large slow-down of
torch's threads waiting for each other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F
from _measure import cpu_info, timed
from torch import nn

from video_lavit import VideoLaVITVisualTokenizer, VideoLaVITVisualTokenizerConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
METHODS = ("encode_features", "tokenize")
SMALL = dict(
    vision_hidden_size=128, vision_num_hidden_layers=2, vision_num_attention_heads=4, vision_intermediate_size=512,
    vision_projection_dim=64, merger_num_hidden_layers=2, merger_num_attention_heads=4, merger_intermediate_size=512,
    codebook_size=1024, language_hidden_size=512,
)  # fmt: skip


@torch.no_grad()
def build_model(config: VideoLaVITVisualTokenizerConfig, seed: int) -> VideoLaVITVisualTokenizer:
    """The model with cheap deterministic random weights, without paying for the default initialisation."""
    with torch.device("meta"):
        model = VideoLaVITVisualTokenizer(config)
    model = model.to_empty(device="cpu").eval()
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, nn.Embedding):  # the codebook
            module.weight.copy_(F.normalize(torch.randn(module.weight.shape, generator=generator), dim=-1))
        else:
            for parameter in module.parameters(recurse=False):
                nn.init.normal_(parameter, std=0.02, generator=generator)
    for buffer in model.buffers():
        buffer.zero_()
    return model


@torch.inference_mode()
def calibrate_keep_ratio(model: VideoLaVITVisualTokenizer, images: torch.Tensor) -> None:
    """Scale and shift the predictor's last layer so that about half of the patches of `images` are kept, with
    keep/drop margins of a few nats (random weights give margins near 0, which bf16 rounds to ties)."""
    fc3 = model.token_predictor.fc3
    fc3.bias.zero_()
    log_probs = model.token_predictor(model.get_vision_features(images))
    margins = (log_probs[..., 0] - log_probs[..., 1]).flatten()
    scale = 2.0 / margins.std().clamp(min=1e-12)
    fc3.weight.mul_(scale)
    shift = scale * margins.median()
    fc3.bias.copy_(torch.stack([-shift / 2, shift / 2]))


def make_images(count: int, size: int, seed: int) -> torch.Tensor:
    """Normalised-looking images, from smooth to detailed, so the kept-token counts differ between images (drawn on
    the CPU, so that every device gets the same images)."""
    generator = torch.Generator().manual_seed(seed)
    images = []
    for index in range(count):
        side = (7, 14, 28, 56, 112, size)[index % 6]
        noise = torch.randn(1, 3, side, side, generator=generator)
        images.append(F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False))
    return torch.cat(images)


def batched(model, method: str, pixels: torch.Tensor):
    return getattr(model, method)(pixels, selection="argmax")


def per_image(model, method: str, pixels: torch.Tensor):
    return [getattr(model, method)(pixels[index : index + 1], selection="argmax") for index in range(len(pixels))]


def compare(method: str, ours, singles: list) -> str:
    """Whether the batched output equals the per-image outputs."""
    if not torch.equal(ours.num_tokens, torch.cat([single.num_tokens for single in singles])):
        return "num_tokens DIFFER"
    field = "indices" if method == "tokenize" else "features"
    rows = ours.split(field)
    references = [single.split(field)[0] for single in singles]
    if method == "tokenize":
        equal = sum(int((row == ref).sum()) for row, ref in zip(rows, references))
        total = sum(row.numel() for row in rows)
        return "identical" if equal == total else f"{equal / max(total, 1):.2%} equal"
    diff = max(
        (float((row.float() - ref.float()).abs().max()) for row, ref in zip(rows, references) if row.numel()),
        default=0.0,
    )
    return f"max|d| {diff:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("full", "small"), default="full", help="model size (default: full)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--dtypes", nargs="+", choices=sorted(DTYPES), default=None, help="default: fp32 bf16 (CUDA: bf16 fp32)"
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up; the median counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--quick", action="store_true", help="--size small --rounds 1")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {args.device}: only cpu and cuda devices are supported")
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available to this torch ({torch.__version__})")
    if args.quick:
        args.size, args.rounds = "small", 1
    args.dtypes = args.dtypes or (["bf16", "fp32"] if cuda else ["fp32", "bf16"])
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    cpu_name, flags = cpu_info()
    if cuda:
        print(f"device: {device} ({torch.cuda.get_device_name(device)})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU: {cpu_name} ({os.cpu_count()} cores)")
    if not cuda and "bf16" in args.dtypes and not flags & {"avx512_bf16", "amx_bf16"}:
        print("note: this CPU has no native bf16 (avx512_bf16 / amx_bf16): bf16 is emulated and slow")
    config = VideoLaVITVisualTokenizerConfig(**(SMALL if args.size == "small" else {}))
    started = time.perf_counter()
    model = build_model(config, args.seed).to(device)
    images = make_images(max(args.batch_sizes), config.image_size, args.seed + 1).to(device)
    calibrate_keep_ratio(model, images)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(
        f"visual tokenizer ({args.size}): {parameters / 1e9:.3f}B parameters, built in "
        f"{time.perf_counter() - started:.1f} s; {args.rounds} rounds (median) after 1 warm-up; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    memory, width = ("GPU MB", 11) if cuda else ("MB", 8)
    header = (
        f"{'method':<15} {'dtype':<5} {'batch':>5} {'base img/s':>10} {'ours img/s':>10} {'speed-up':>8} "
        f"{'base ' + memory:>{width}} {'ours ' + memory:>{width}} {'kept':>6}  batched == per-image"
    )
    print(header)
    print("-" * len(header))
    kept_counts = []
    for dtype_name in args.dtypes:
        model = model.to(DTYPES[dtype_name])
        for batch_size in args.batch_sizes:
            pixels = images[:batch_size]
            for method in args.methods:
                calls = {"baseline": partial(per_image, model, method, pixels)}
                calls["ours"] = partial(batched, model, method, pixels)
                seconds: dict = {"baseline": [], "ours": []}
                peak_mb = {"baseline": 0.0, "ours": 0.0}
                outputs: dict = {}
                with torch.inference_mode():
                    for round_index in range(args.rounds + 1):  # round 0 is the warm-up
                        for kind in ("baseline", "ours") if round_index % 2 == 0 else ("ours", "baseline"):
                            elapsed, peak, outputs[kind] = timed(calls[kind], device)
                            peak_mb[kind] = max(peak_mb[kind], peak)
                            if round_index:
                                seconds[kind].append(elapsed)
                base, ours = statistics.median(seconds["baseline"]), statistics.median(seconds["ours"])
                kept = outputs["ours"].num_tokens.float()
                kept_counts.extend(outputs["ours"].num_tokens.tolist())
                print(
                    f"{method:<15} {dtype_name:<5} {batch_size:>5} "
                    f"{batch_size / base:>10.3f} {batch_size / ours:>10.3f} "
                    f"{base / ours:>7.2f}x {peak_mb['baseline']:>{width}.0f} {peak_mb['ours']:>{width}.0f} "
                    f"{kept.mean():>6.1f}  "
                    f"{compare(method, outputs['ours'], outputs['baseline'])}",
                    flush=True,
                )
    if kept_counts:
        mean = statistics.mean(kept_counts)
        print(
            f"kept tokens per image: mean {mean:.1f} of {config.num_patches} ({mean / config.num_patches:.0%}), "
            f"range {min(kept_counts)}..{max(kept_counts)}"
        )


if __name__ == "__main__":
    main()
