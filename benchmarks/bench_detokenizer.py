"""Speed and memory of the video detokenizer (`VideoLaVITDetokenizerPipeline`): the pipeline's overhead per denoising
step over a bare UNet loop, and the peak memory of chunked VAE decoding.

(a) Denoising. Seconds per step of the whole `pipe(image=..., motion_codes=..., output_type="latent")` call (one
clip of 24 frames, guidance on, so the UNet sees a doubled batch), i.e. its total time / `--steps`, against a bare
loop on the same weights and inputs measured in the same run. The baseline is exactly: `scheduler.set_timesteps`
once, then `--steps` times one call of `pipe.unet` on a ready-made `[2 * batch, 24, 10, h, w]` input (latents,
keyframe latents, motion; built once outside the timing, with the same motion tokens, `added_time_ids` and
timesteps as the pipeline) and one `EulerDiscreteScheduler.step` (on a copy of the pipeline's scheduler). So the
overhead counts everything else the call does: preprocessing the keyframe, decoding the 135 motion codes with the
motion tokenizer, the keyframe's VAE encoding, the motion condition encoder (the "setup", paid once per clip and
also timed on its own, in two parts), and per step the concatenations, `scale_model_input` and the per-frame
guidance. As the setup is paid once per clip, the overhead is also projected to 25 steps (the default) from the
measured per-step and setup times. Progress bars are off.

(b) Decoding. Peak memory and time of `pipe.decode_latents` on 24 frames of latents with `decode_chunk_size` 1, 8
and 24 (24 is unchunked, the baseline of the ratios). On CUDA the peak is `torch.cuda.max_memory_allocated()`
during the call (the statistics are reset just before it) minus the memory allocated when it started; on the CPU
it is the largest resident set size seen (sampled every 5 ms) minus the size before it, after glibc's `malloc_trim`
has returned the memory earlier calls freed (otherwise a call reuses it unseen). The largest peak over the rounds
is reported.

Rounds: one warm-up round (not counted), then `--rounds` rounds alternating between the implementations (and which
goes first); the fastest round counts, so a burst of other load on the machine does not decide the comparison. On
CUDA every timed call is bracketed by `torch.cuda.synchronize()`.

    python benchmarks/bench_detokenizer.py --size small --threads 1                 # tiny models, CPU (~30 s)
    python benchmarks/bench_detokenizer.py --size full --device cuda --dtype bf16   # real sizes, random weights
    python benchmarks/bench_detokenizer.py --size full --device cuda --dtype fp32 --steps 5 --rounds 3

`--size small` builds tiny components like the tests (64 x 64 frames by default); `--size full` builds the
configurations in hub_configs/detokenizer/ (1.5B-parameter video UNet, 320 x 512 by default) with random weights,
directly on the device; it is meant for a GPU. Only the components of the video path are built (no keyframe UNet).
`--device` takes a torch device string (`cpu`, `cuda`, `cuda:1`); the inputs are drawn on the CPU with fixed seeds.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import diffusers
import torch
from _measure import cpu_info, timed
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

from video_lavit import VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig
from video_lavit.pipelines import VideoLaVITDetokenizerPipeline, VideoLaVITMotionConditionEncoder, VideoLaVITVideoUNet

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
HUB_CONFIGS = Path(__file__).resolve().parents[1] / "hub_configs" / "detokenizer"
FRAMES = 24
SMALL_UNET = dict(
    in_channels=10, out_channels=4, block_out_channels=(32, 64), layers_per_block=1, num_attention_heads=(2, 4),
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
    addition_time_embed_dim=8, projection_class_embeddings_input_dim=24, num_frames=FRAMES, sample_size=8,
)  # fmt: skip
SMALL_MOTION_ENCODER = dict(out_channels=32, hidden_size=32, num_attention_heads=2, num_layers=2)
SMALL_VAE = dict(block_out_channels=(32,) * 4, down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=1)
SMALL_MOTION_TOKENIZER = dict(hidden_size=16, num_attention_heads=2, codebook_size=64, code_dim=8, blocks_per_stage=1)


def build_pipeline(size: str, device: torch.device, dtype: torch.dtype) -> VideoLaVITDetokenizerPipeline:
    """The video path of the pipeline with random weights, built directly on `device` and cast to `dtype`."""
    torch.manual_seed(0)
    with torch.device(device):
        if size == "full":
            unet = VideoLaVITVideoUNet.from_config(VideoLaVITVideoUNet.load_config(HUB_CONFIGS / "unet"))
            motion_encoder = VideoLaVITMotionConditionEncoder.from_config(
                VideoLaVITMotionConditionEncoder.load_config(HUB_CONFIGS / "motion_encoder")
            )
            vae = AutoencoderKLTemporalDecoder.from_config(
                AutoencoderKLTemporalDecoder.load_config(HUB_CONFIGS / "vae")
            )
            motion_config = VideoLaVITMotionTokenizerConfig.from_pretrained(HUB_CONFIGS / "motion_tokenizer")
        else:
            unet = VideoLaVITVideoUNet(**SMALL_UNET)
            motion_encoder = VideoLaVITMotionConditionEncoder(**SMALL_MOTION_ENCODER)
            vae = AutoencoderKLTemporalDecoder(**SMALL_VAE)
            motion_config = VideoLaVITMotionTokenizerConfig(**SMALL_MOTION_TOKENIZER)
        motion_tokenizer = VideoLaVITMotionTokenizer(motion_config)
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(HUB_CONFIGS / "scheduler"))
    modules = dict(unet=unet, motion_encoder=motion_encoder, vae=vae, motion_tokenizer=motion_tokenizer)
    for module in modules.values():
        module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    pipe = VideoLaVITDetokenizerPipeline(scheduler=scheduler, **modules)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class BareLoop:
    """The baseline: the UNet and the scheduler step only, on inputs the pipeline would build (see the docstring)."""

    NOISE_AUG_STRENGTH, FPS, MOTION_BUCKET_ID = 0.02, 6, 127

    @torch.no_grad()
    def __init__(self, pipe, image, motion_codes, height: int, width: int, steps: int, device: torch.device):
        self.unet, self.steps, self.device = pipe.unet, steps, device
        self.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        dtype, generator = pipe.unet.dtype, torch.Generator().manual_seed(0)
        keyframes = pipe.image_processor.preprocess(image, height=height, width=width).to(device)
        motion = pipe.motion_at_latent_size(
            motion_codes=motion_codes.to(device), motion=None, height=height, width=width
        )  # b c t h w
        image_latents = pipe.encode_keyframe_latents(
            keyframes,
            noise_aug_strength=self.NOISE_AUG_STRENGTH,
            generator=generator,
            do_classifier_free_guidance=True,
        )
        image_latents = image_latents.unsqueeze(1).repeat(1, FRAMES, 1, 1, 1).to(dtype)
        motion_latents = motion.permute(0, 2, 1, 3, 4).to(dtype)  # b c t h w -> b t c h w
        motion_latents = torch.cat([torch.zeros_like(motion_latents), motion_latents])
        conditions = pipe.motion_encoder(motion.to(pipe.motion_encoder.dtype)).sample.to(dtype)
        self.conditions = torch.cat([torch.zeros_like(conditions), conditions])
        time_ids = [[self.FPS, self.MOTION_BUCKET_ID, self.NOISE_AUG_STRENGTH]]
        self.time_ids = torch.tensor(time_ids, device=device, dtype=dtype).repeat(self.conditions.shape[0], 1)
        batch, _, _, latent_height, latent_width = motion.shape
        shape = (batch, FRAMES, self.unet.config.out_channels, latent_height, latent_width)
        self.latents = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        self.model_input = torch.cat([torch.cat([self.latents] * 2), image_latents, motion_latents], dim=2)

    @torch.no_grad()
    def __call__(self) -> torch.Tensor:
        self.scheduler.set_timesteps(self.steps, device=self.device)
        latents, batch = self.latents, self.latents.shape[0]
        for timestep in self.scheduler.timesteps:
            noise_pred = self.unet(
                self.model_input,
                timestep,
                encoder_hidden_states=self.conditions,
                added_time_ids=self.time_ids,
                return_dict=False,
            )[0]
            latents = self.scheduler.step(noise_pred[batch:], timestep, latents, return_dict=False)[0]
        return latents


@torch.no_grad()
def motion_setup(pipe, motion_codes, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Setup, part 1: the 135 motion codes -> motion at the latent size (the motion tokenizer's decoder)."""
    return pipe.motion_at_latent_size(motion_codes=motion_codes.to(device), motion=None, height=height, width=width)


@torch.no_grad()
def condition_setup(pipe, image, motion: torch.Tensor, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Setup, part 2: the keyframe's preprocessing and VAE encoding, and the motion condition encoder."""
    keyframes = pipe.image_processor.preprocess(image, height=height, width=width).to(device)
    pipe.encode_keyframe_latents(
        keyframes,
        noise_aug_strength=BareLoop.NOISE_AUG_STRENGTH,
        generator=torch.Generator().manual_seed(0),
        do_classifier_free_guidance=True,
    )
    return pipe.motion_encoder(motion.to(pipe.motion_encoder.dtype)).sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("small", "full"), default="small", help="component sizes (small)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="weights and activations (fp32)")
    parser.add_argument("--height", type=int, help="multiple of 64 (default: 320 full, 64 small)")
    parser.add_argument("--width", type=int, help="multiple of 64 (default: 512 full, 64 small)")
    parser.add_argument("--batch", type=int, default=1, help="videos per call (default %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="denoising steps per call (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {args.device}: only cpu and cuda devices are supported")
    if cuda and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available to this torch ({torch.__version__})")
    height = args.height or (320 if args.size == "full" else 64)
    width = args.width or (512 if args.size == "full" else 64)
    if height % 64 or width % 64:
        parser.error(f"--height and --width must be multiples of 64, got {height} x {width}")
    if args.steps < 1 or args.rounds < 1 or args.batch < 1:
        parser.error("--steps, --rounds and --batch must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    diffusers.utils.logging.set_verbosity_error()  # not the "modules that should be kept in float32: []" notes

    name, flags = cpu_info()
    name = torch.cuda.get_device_name(device) if cuda else name
    print(f"device: {device} ({name}); torch {torch.__version__}, diffusers {diffusers.__version__}")
    if not cuda:
        print(f"cpu threads: {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")
        if dtype == torch.bfloat16 and not flags & {"avx512_bf16", "amx_bf16"}:
            print("note: this CPU has no native bf16 (avx512_bf16 / amx_bf16): bf16 is emulated and slow")
    started = time.perf_counter()
    pipe = build_pipeline(args.size, device, dtype)
    millions = {
        key: sum(parameter.numel() for parameter in module.parameters()) / 1e6
        for key, module in pipe.components.items()
        if isinstance(module, torch.nn.Module)
    }
    print(
        f"pipeline ({args.size}, {args.dtype}, built in {time.perf_counter() - started:.1f} s): "
        + ", ".join(f"{key} {value:,.2f}M" for key, value in millions.items())
    )
    print(
        f"video: batch {args.batch} x {FRAMES} frames at {height} x {width}, guidance on (UNet batch "
        f"{2 * args.batch}), {args.steps} steps; {args.rounds} rounds (fastest) after 1 warm-up"
    )

    inputs = torch.Generator().manual_seed(1)
    image = torch.rand(args.batch, 3, height, width, generator=inputs)
    codebook = pipe.motion_tokenizer.config.codebook_size
    motion_codes = torch.randint(0, codebook, (args.batch, 135), generator=inputs)

    def pipeline_call():
        return pipe(
            image=image,
            motion_codes=motion_codes,
            height=height,
            width=width,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames

    bare = BareLoop(pipe, image, motion_codes, height, width, args.steps, device)
    motion = motion_setup(pipe, motion_codes, height, width, device)
    runs = {
        "baseline": bare,
        "pipeline": pipeline_call,
        "motion": lambda: motion_setup(pipe, motion_codes, height, width, device),
        "conditions": lambda: condition_setup(pipe, image, motion, height, width, device),
    }
    times: dict[str, list[float]] = {key: [] for key in runs}
    for round_index in range(args.rounds + 1):
        order = list(runs) if round_index % 2 == 0 else list(reversed(runs))
        for key in order:
            seconds = timed(runs[key], device)[0]
            if round_index:
                times[key].append(seconds)
    fastest = {key: min(values) for key, values in times.items()}
    setup = fastest["motion"] + fastest["conditions"]
    base_step = fastest["baseline"] / args.steps
    rows = [
        ("baseline: unet + scheduler.step per step", fastest["baseline"], base_step),
        ("pipeline __call__(output_type='latent')", fastest["pipeline"], fastest["pipeline"] / args.steps),
        ("  setup, once per clip: motion codes -> motion", fastest["motion"], None),
        ("  setup: keyframe VAE encode + motion encoder", fastest["conditions"], None),
    ]
    print()
    header = f"{'denoising (one clip)':<48} {'s/call':>9} {'s/step':>9} {'vs baseline':>11}"
    print(header)
    print("-" * len(header))
    for label, seconds, per_step in rows:
        line = f"{label:<48} {seconds:>9.4f} "
        line += f"{per_step:>9.4f} {per_step / base_step:>11.3f}" if per_step is not None else f"{'':>9} {'':>11}"
        print(line)
    overhead = fastest["pipeline"] / fastest["baseline"] - 1
    loop_extra = (fastest["pipeline"] - setup - fastest["baseline"]) / args.steps
    projected = (setup + 25 * loop_extra) / (25 * base_step)
    verdict = "under" if overhead < 0.05 else "OVER"
    print(f"pipeline overhead at {args.steps} steps: {overhead:+.1%} ({verdict} the 5% target)")
    print(
        f"  of which setup {setup / fastest['baseline']:+.1%}, per-step loop (pipeline - setup - baseline) "
        f"{loop_extra / base_step:+.1%}; projected at 25 steps: {projected:+.1%}"
    )

    # (b) decoding memory
    generator = torch.Generator().manual_seed(2)
    latent_shape = (args.batch, FRAMES, 4, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    latents = torch.randn(latent_shape, generator=generator).to(device=device, dtype=dtype)
    chunks = (1, 8, 24)
    decode_times: dict[int, list[float]] = {chunk: [] for chunk in chunks}
    peaks: dict[int, float] = dict.fromkeys(chunks, 0.0)
    with torch.no_grad():
        for round_index in range(args.rounds + 1):
            for chunk in chunks if round_index % 2 == 0 else reversed(chunks):
                seconds, peak, _ = timed(
                    lambda chunk=chunk: pipe.decode_latents(latents, decode_chunk_size=chunk), device
                )
                if round_index:
                    decode_times[chunk].append(seconds)
                    peaks[chunk] = max(peaks[chunk], peak)
    memory = "peak GPU MB" if cuda else "peak RSS MB"
    print()
    header = f"{'decode 24 frames':<20} {'s':>9} {'frames/s':>9} {memory:>12} {'memory vs 24':>12}"
    print(header)
    print("-" * len(header))
    for chunk in chunks:
        seconds = min(decode_times[chunk])
        label = f"decode_chunk_size {chunk}"
        ratio = peaks[chunk] / peaks[24] if peaks[24] > 0 else float("nan")
        frames_per_second = args.batch * FRAMES / seconds
        print(f"{label:<20} {seconds:>9.4f} {frames_per_second:>9.1f} {peaks[chunk]:>12.1f} {ratio:>12.2f}")


if __name__ == "__main__":
    main()
