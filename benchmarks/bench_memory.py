"""Peak memory of loading Video-LaVIT's understanding model at the release's size, in each way transformers offers.

The checkpoint is the release's configuration (`VideoLaVITConfig()`: LLaMA-2-7B, the EVA ViT-G keyframe tokenizer
and the motion tokenizer, 8.5 billion parameters) with random bfloat16 weights, written once as sharded safetensors
into `--work-dir` (about 17 GB; kept for later runs). Its shards are written tensor by tensor, so writing it needs
no more than one shard of memory. Each way of loading then runs in a fresh Python subprocess:

- `float32`: `from_pretrained(dir, dtype=torch.float32)` (skipped where the memory cannot hold it);
- `bfloat16`: `dtype=torch.bfloat16`;
- `8-bit`: `quantization_config=BitsAndBytesConfig(load_in_8bit=True,
  llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES)`, the rest in bfloat16;
- `4-bit`: `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=bfloat16,
  llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES)`;
- `device_map="auto"` capped: `device_map="auto", max_memory={DEVICE: "4GiB", ...}, offload_folder=...`, bfloat16:
  accelerate places what does not fit on the CPU (on a GPU) or on disk (on the CPU).

For each: the peak memory while loading and running one forward of 8 text tokens, the memory still held after it,
and the model's own `get_memory_footprint()` (the bytes of its parameters and buffers). On a GPU these are
`torch.cuda.max_memory_allocated()` and `memory_allocated()`. On the CPU they are the process's anonymous resident
memory (`RssAnon`, sampled every 5 ms, above what the imports took), and "mapped" is the resident memory-mapped file
pages after the forward (`RssFile`): a bfloat16 checkpoint loaded in bfloat16 is not copied, its tensors are the
mapped pages of the safetensors files; the pages a quantized load read and converted stay mapped as page cache,
which the kernel drops when memory is short. Weights dominate these numbers; a forward over a video's ~400 tokens
adds its activations (small next to the weights at batch size 1) and, on a GPU, the CUDA context (~0.5 GB).

Usage:
    python benchmarks/bench_memory.py --work-dir /data/video_lavit_memory      # every way that fits
    python benchmarks/bench_memory.py --work-dir DIR --only bfloat16,4-bit
    python benchmarks/bench_memory.py --work-dir DIR --layers 4                 # a 4-layer language model (smoke)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

WAYS = ("float32", "bfloat16", "8-bit", "4-bit", "device_map-auto")


def _config(layers: int | None):
    from video_lavit import VideoLaVITConfig

    config = VideoLaVITConfig()
    if layers is not None:
        config.text_config.num_hidden_layers = layers
    return config


def write_checkpoint(folder: str, layers: int | None, shard_bytes: int = 2 * 2**30) -> int:
    """The release-size checkpoint with random bfloat16 weights (std 0.02; vectors: 1, biases 0), shard by shard;
    its size in bytes."""
    import torch
    from safetensors.torch import save_file

    from video_lavit import VideoLaVITForConditionalGeneration

    config = _config(layers)
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index_path):
        return json.load(open(index_path))["metadata"]["total_size"]
    os.makedirs(folder, exist_ok=True)
    with torch.device("meta"):
        model = VideoLaVITForConditionalGeneration(config)
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    weight_map, shard, shard_size, total, count = {}, {}, 0, 0, 0

    def flush():
        nonlocal shard, shard_size, count
        if shard:
            name = f"model-{count:05d}.safetensors"
            save_file(shard, os.path.join(folder, name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
            shard, shard_size, count = {}, 0, count + 1

    for name, shape in shapes.items():
        if len(shape) == 1:  # norm scales 1, biases 0
            tensor = torch.full(shape, 0.0 if name.endswith("bias") else 1.0, dtype=torch.bfloat16)
        else:
            tensor = (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
        shard[name] = tensor
        shard_size += tensor.numel() * 2
        total += tensor.numel() * 2
        if shard_size >= shard_bytes:
            flush()
    flush()
    config.dtype = "bfloat16"
    config.save_pretrained(folder)
    with open(index_path, "w") as handle:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, handle)
    return total


def _resident(field: str = "RssAnon") -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def measure(folder: str, way: str, offload_dir: str) -> dict:
    """In this process: load `folder` the `way` given, run one 8-token forward; peak memory and footprint."""
    import torch
    from transformers import BitsAndBytesConfig

    from video_lavit import QUANTIZATION_SKIP_MODULES, VideoLaVITForConditionalGeneration

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    kwargs: dict = {"dtype": torch.float32 if way == "float32" else torch.bfloat16}
    if way == "8-bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=True, llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES
        )
    elif way == "4-bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
        )
    if way == "device_map-auto":
        kwargs.update(device_map="auto", offload_folder=offload_dir)
        kwargs["max_memory"] = {0: "4GiB", "cpu": "64GiB"} if cuda else {"cpu": "4GiB"}
    elif way in ("8-bit", "4-bit"):
        kwargs["device_map"] = device
    peak, running = [0], [True]
    base, base_file = _resident(), _resident("RssFile")

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _resident())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    else:
        thread.start()
    started = time.perf_counter()
    model = VideoLaVITForConditionalGeneration.from_pretrained(folder, **kwargs).eval()
    if way in ("float32", "bfloat16") and cuda:
        model.to(device)
    loaded = time.perf_counter() - started
    with torch.no_grad():
        ids = torch.arange(3, 11).reshape(1, 8).to(model.device if way != "device_map-auto" else device)
        logits = model(input_ids=ids).logits
    finite = bool(torch.isfinite(logits.float()).all())
    if cuda:
        peak_bytes, held_bytes = torch.cuda.max_memory_allocated(), torch.cuda.memory_allocated()
        mapped_bytes = 0
    else:
        running[0] = False
        thread.join()
        held_bytes = _resident() - base
        peak_bytes = max(peak[0], held_bytes + base) - base
        mapped_bytes = _resident("RssFile") - base_file
    return {
        "way": way,
        "device": device,
        "peak_gb": peak_bytes / 1e9,
        "held_gb": held_bytes / 1e9,
        "mapped_gb": mapped_bytes / 1e9,
        "footprint_gb": model.get_memory_footprint() / 1e9,
        "load_s": loaded,
        "finite_logits": finite,
    }


def _available_bytes() -> int:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[1]
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True, help="where the release-size checkpoint is written (~17 GB)")
    parser.add_argument("--only", help=f"comma-separated ways ({', '.join(WAYS)})")
    parser.add_argument("--layers", type=int, help="language-model layers (default 32, the release's)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = os.path.join(args.work_dir, "understanding" if args.layers is None else f"understanding-{args.layers}")
    if args.child == "write":
        write_checkpoint(folder, args.layers)
        return
    if args.child:
        result = measure(folder, args.child, os.path.join(args.work_dir, "offload"))
        print("RESULT " + json.dumps(result), flush=True)
        return
    ways = WAYS if not args.only else tuple(args.only.split(","))
    unknown = set(ways) - set(WAYS)
    if unknown:
        parser.error(f"unknown ways: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    layers = [] if args.layers is None else ["--layers", str(args.layers)]
    # Written in a process of its own, so that this one holds no memory while the others measure.
    subprocess.run([sys.executable, __file__, "--work-dir", args.work_dir, "--child", "write", *layers], check=True)
    size = write_checkpoint(folder, args.layers)  # (only reads the size now)
    print(f"checkpoint: {folder} ({size / 1e9:.1f} GB of bfloat16, {time.perf_counter() - started:.0f} s)")
    available = _available_bytes()
    rows = []
    for way in ways:
        if way == "float32" and 2.1 * size > available:
            rows.append({"way": way, "skipped": f"needs ~{2 * size / 1e9:.0f} GB, {available / 1e9:.0f} GB here"})
            continue
        command = [sys.executable, __file__, "--work-dir", args.work_dir, "--child", way, *layers]
        completed = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if completed.returncode != 0 or not lines:
            last = (completed.stderr.strip().splitlines() or [f"exit status {completed.returncode}"])[-1]
            rows.append({"way": way, "skipped": "failed: " + last[:200]})
            continue
        rows.append(json.loads(lines[-1][len("RESULT ") :]))
    print(
        f"\n{'way':<18}{'device':>8}{'peak GB':>10}{'held GB':>10}{'mapped GB':>11}{'footprint GB':>14}"
        f"{'load s':>9}  logits"
    )
    for row in rows:
        if "skipped" in row:
            print(f"{row['way']:<18}  skipped: {row['skipped']}")
            continue
        print(
            f"{row['way']:<18}{row['device']:>8}{row['peak_gb']:>10.2f}{row['held_gb']:>10.2f}"
            f"{row['mapped_gb']:>11.2f}{row['footprint_gb']:>14.2f}"
            f"{row['load_s']:>9.1f}  {'finite' if row['finite_logits'] else 'NOT FINITE'}"
        )
    reference = next((row for row in rows if row["way"] == "bfloat16" and "peak_gb" in row), None)
    if reference:
        for row in rows:
            if "peak_gb" in row and row is not reference:
                line = f"{row['way']}: footprint {row['footprint_gb'] / reference['footprint_gb']:.2f}x bfloat16's"
                if row["device"] == "cuda":  # (on the CPU a bfloat16 load is mapped, not allocated)
                    line += f", peak {row['peak_gb'] / reference['peak_gb']:.2f}x"
                print(line)


if __name__ == "__main__":
    main()
