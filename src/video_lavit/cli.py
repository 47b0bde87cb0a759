"""The `video-lavit` command line.

`video-lavit tokenize [VIDEO ...]` cuts videos into clips and writes, per video, a `.safetensors` file with the
keyframes, motion grids and clip metadata, and a PNG contact sheet; with no video it runs on a built-in procedural
sample so a fresh install shows something real.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import torch
from huggingface_hub.utils import disable_progress_bars, tqdm
from safetensors.torch import save_file

from .errors import InvalidInputError, VideoLaVITError
from .processing.sample_video import make_sample_video
from .processing.video_processing_video_lavit import VideoLaVITVideoProcessor
from .processing.visualization import clip_motion_summary, make_contact_sheet, motion_to_hsv_image

SAMPLE_VIDEO_NAME = "video_lavit_sample.mp4"


def _output_stem(video: str, used: set[str]) -> str:
    stem = os.path.splitext(os.path.basename(os.path.normpath(video)))[0] or "video"
    candidate, counter = stem, 1
    while candidate in used:
        counter += 1
        candidate = f"{stem}_{counter}"
    used.add(candidate)
    return candidate


def tokenize_motion(
    motion_tokenizer, motion_vectors: torch.Tensor, batch_size: int = 4, progress: bool | None = None, name: str = ""
) -> tuple[torch.Tensor, torch.Tensor]:
    """Motion token ids `[clips, 135]` and the motion decoded from them `[clips, 2, 24, 20, 36]` (fp32, on the CPU),
    `batch_size` clips at a time (the tokenizer's memory is that of one batch however long the video), with a
    progress bar (`progress`: None shows it from two batches on, False never)."""
    if batch_size < 1:
        raise InvalidInputError(f"the motion batch size must be at least 1, got {batch_size}")
    batches = motion_vectors.split(batch_size)
    show = len(batches) > 1 if progress is None else progress
    token_ids, decoded = [], []
    for batch in tqdm(
        batches, desc=f"motion tokens {os.path.basename(name)[:30]}", unit="batch", disable=not show, leave=False
    ):
        with torch.no_grad():
            indices = motion_tokenizer.encode(batch.to(motion_tokenizer.device, motion_tokenizer.dtype)).indices
            decoded.append(motion_tokenizer.decode(indices).float().cpu())
        token_ids.append(indices.cpu())
    return torch.cat(token_ids), torch.cat(decoded)


def tokenize_video(
    processor: VideoLaVITVideoProcessor,
    video: str,
    output_dir: str,
    stem: str,
    motion_tokenizer=None,
    motion_batch_size: int = 4,
    **options,
) -> dict:
    """Process one video; write `<stem>.safetensors` and `<stem>.png` into `output_dir`; return a summary row.

    With a `motion_tokenizer`, the 135 motion token ids per clip are added (`motion_token_ids`), and the contact
    sheet shows the motion decoded from them beside the original; clips go through it `motion_batch_size` at a
    time.
    """
    started = time.perf_counter()
    keyframes, pixel_values, motions, starts, times, valid = [], [], [], [], [], []
    with processor.clip_reader(video, **options) as reader:
        info = reader.info
        for clip in reader:
            keyframes.append(clip.keyframe)
            pixel_values.append(processor.preprocess_keyframe(clip.keyframe, **options))
            motions.append(clip.motion_vectors)
            starts.append(clip.start_frame)
            times.append(clip.start_time)
            valid.append(clip.num_valid_frames)
    if not motions:
        raise VideoLaVITError(f"{video}: no clip could be cut from the video.")
    tensors = {
        "keyframe_pixel_values": torch.stack(pixel_values),
        "motion_vectors": torch.stack(motions),
        "clip_start_frames": torch.tensor(starts, dtype=torch.long),
        "clip_start_times": torch.tensor(times, dtype=torch.float64),
        "clip_num_valid_frames": torch.tensor(valid, dtype=torch.long),
    }
    metadata = {
        "source": video,
        "source_codec": info.source_codec,
        "width": str(info.width),
        "height": str(info.height),
        "frame_rate": str(info.frame_rate),
        "num_frames": str(info.num_frames),
        "intra_frames": json.dumps(info.intra_frames),
        "processor_config": processor.to_json_string(),
    }
    extra_tiles = None
    if motion_tokenizer is not None:
        token_ids, decoded = tokenize_motion(
            motion_tokenizer, tensors["motion_vectors"], motion_batch_size, options.get("progress"), video
        )
        tensors["motion_token_ids"] = token_ids
        extra_tiles = []
        for clip_motion, clip_decoded in zip(motions, decoded):
            scale = float(clip_motion_summary(clip_motion).__abs__().max()) or None
            extra_tiles.append([motion_to_hsv_image(clip_motion_summary(clip_decoded), max_magnitude=scale)])
    tensor_path = os.path.join(output_dir, f"{stem}.safetensors")
    save_file(tensors, tensor_path, metadata=metadata)
    sheet_path = os.path.join(output_dir, f"{stem}.png")
    make_contact_sheet(keyframes, motions, extra_rows=extra_tiles).save(sheet_path)
    return {
        "video": video,
        "clips": len(motions),
        "seconds": info.duration,
        "time": time.perf_counter() - started,
        "tensors": tensor_path,
        "sheet": sheet_path,
    }


def _print_table(rows: list[dict]) -> None:
    name_width = max([5] + [len(os.path.basename(row["video"])) for row in rows])
    print(f"{'video':<{name_width}}  {'clips':>5}  {'video s':>8}  {'took s':>7}  output")
    for row in rows:
        print(
            f"{os.path.basename(row['video']):<{name_width}}  {row['clips']:>5}  {row['seconds']:>8.1f}  "
            f"{row['time']:>7.2f}  {row['tensors']}, {row['sheet']}"
        )


def run_tokenize(args: argparse.Namespace) -> int:
    if args.quiet:
        disable_progress_bars()
    os.makedirs(args.output_dir, exist_ok=True)
    videos = list(args.videos)
    if not videos:
        sample = os.path.join(args.output_dir, SAMPLE_VIDEO_NAME)
        make_sample_video(sample, seconds=20.0)
        if not args.quiet:
            print(f"no video given: using the built-in sample {sample} (20 s, 320x192, moving texture)")
        videos = [sample]
    processor = (
        VideoLaVITVideoProcessor.from_pretrained(args.processor) if args.processor else VideoLaVITVideoProcessor()
    )
    motion_tokenizer = None
    if args.motion_tokenizer:
        from .tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer

        motion_tokenizer = VideoLaVITMotionTokenizer.from_pretrained(args.motion_tokenizer).eval()
    options = {"progress": False if args.quiet else None}
    if args.max_clips is not None:
        options["max_clips"] = None if args.max_clips == 0 else args.max_clips
    if args.no_reencode:
        options["reencode"] = False
    if args.encoder_threads is not None:
        options["encoder_threads"] = args.encoder_threads

    rows, failures, used = [], 0, set()
    for video in videos:
        try:
            stem = _output_stem(video, used)
            rows.append(
                tokenize_video(
                    processor,
                    video,
                    args.output_dir,
                    stem,
                    motion_tokenizer,
                    motion_batch_size=args.motion_batch_size,
                    **options,
                )
            )
        except VideoLaVITError as error:
            failures += 1
            print(f"error: {error}", file=sys.stderr)
    if rows and not args.quiet:
        _print_table(rows)
    return 1 if failures else 0


def run_convert_motion_tokenizer(args: argparse.Namespace) -> int:
    from .conversion.motion_tokenizer import convert_motion_tokenizer

    try:
        model = convert_motion_tokenizer(args.checkpoint, args.output, num_attention_heads=args.num_attention_heads)
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


def run_convert_visual_tokenizer(args: argparse.Namespace) -> int:
    from .conversion.visual_tokenizer import convert_visual_tokenizer

    try:
        tokenizer, decoder = convert_visual_tokenizer(
            args.checkpoint_dir,
            args.output,
            vision_num_attention_heads=args.vision_attention_heads,
            num_attention_heads=args.num_attention_heads,
        )
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {os.path.join(args.output, 'visual_tokenizer')} ({tokenizer.num_parameters():,} parameters)")
    print(f"wrote {os.path.join(args.output, 'visual_token_decoder')} ({decoder.num_parameters():,} parameters)")
    return 0


def run_convert_language_model(args: argparse.Namespace) -> int:
    from .conversion.language_model import convert_language_model

    try:
        model, processor = convert_language_model(
            args.checkpoint_dir,
            args.output,
            visual_tokenizer=args.visual_tokenizer,
            motion_tokenizer=args.motion_tokenizer,
            keyframe_input=args.keyframe_input,
            num_attention_heads=args.num_attention_heads,
            motion_attention_heads=args.motion_attention_heads,
            vision_attention_heads=args.vision_attention_heads,
            tokenizer_dir=args.tokenizer_dir,
        )
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    kind = "understanding" if model.config.keyframe_input == "features" else "generation"
    print(f"wrote {args.output} ({kind} model, {model.num_parameters():,} parameters)")
    if processor is None:
        print("note: no tokenizer files found; the folder has no processor (pass --tokenizer-dir)", file=sys.stderr)
    return 0


def run_convert_detokenizer(args: argparse.Namespace) -> int:
    from .conversion.detokenizer import convert_detokenizer

    try:
        pipeline = convert_detokenizer(
            args.checkpoint_dir,
            args.output,
            motion_encoder_heads=args.motion_encoder_heads,
            motion_tokenizer_heads=args.motion_tokenizer_heads,
            visual_num_attention_heads=args.num_attention_heads,
            vision_num_attention_heads=args.vision_attention_heads,
            include_keyframe_model=not args.no_keyframe_model,
        )
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    names = ", ".join(name for name, component in pipeline.components.items() if component is not None)
    print(f"wrote {args.output} ({names})")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from PIL import Image

    from .pipelines.generation import VideoLaVITGenerator

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    detokenizer_kwargs = dict(height=args.height, width=args.width, num_inference_steps=args.steps)
    try:
        generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=args.device)
        generator.detokenizer.set_progress_bar_config(disable=args.quiet)
        if args.image:
            try:
                image = Image.open(args.image).convert("RGB")
            except OSError as error:
                raise VideoLaVITError(f"{args.image}: cannot read the image ({error}); pass a PNG or JPEG") from error
            if args.clips != 1:
                raise VideoLaVITError("image-to-video makes one clip; drop --clips or leave out --image")
            output = generator.image_to_video(image, args.prompt or "", seed=args.seed, **detokenizer_kwargs)
        else:
            if not args.prompt:
                raise VideoLaVITError("give a text prompt, or --image for image-to-video")
            output = generator.text_to_video(
                args.prompt,
                num_clips=args.clips,
                seed=args.seed,
                keyframe_num_inference_steps=args.keyframe_steps,
                **detokenizer_kwargs,
            )
        path = generator.save_video(output.frames[0], args.output, fps=args.fps)
    except (VideoLaVITError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {path} ({len(output.frames[0])} frames at {args.fps} fps)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="video-lavit", description="Video-LaVIT: videos as keyframe and motion tokens."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    tokenize = commands.add_parser(
        "tokenize",
        help="cut videos into clips: keyframes and motion-vector grids, saved as safetensors with a contact sheet",
    )
    tokenize.add_argument("videos", nargs="*", help="video files (default: a built-in procedural sample)")
    tokenize.add_argument(
        "-o", "--output-dir", default="video_lavit_output", help="where to write (default: %(default)s)"
    )
    tokenize.add_argument("--processor", help="a folder saved by VideoLaVITVideoProcessor.save_pretrained")
    tokenize.add_argument("--max-clips", type=int, help="most clips per video (default 16; 0 for no limit)")
    tokenize.add_argument("--no-reencode", action="store_true", help="read the stream as it is (faster, approximate)")
    tokenize.add_argument("--encoder-threads", type=int, help="MPEG-4 encoder slices (default 16)")
    tokenize.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no table")
    tokenize.add_argument(
        "--motion-tokenizer", help="a converted motion tokenizer folder: also write its 135 token ids per clip"
    )
    tokenize.add_argument(
        "--motion-batch-size",
        type=_positive_int,
        default=4,
        help="clips per motion tokenizer call (default %(default)s; memory grows with it)",
    )
    tokenize.set_defaults(handler=run_tokenize)

    convert = commands.add_parser("convert", help="convert reference checkpoints to safetensors folders")
    targets = convert.add_subparsers(dest="target", required=True)
    motion = targets.add_parser("motion-tokenizer", help="motion_tokenizer.bin -> VideoLaVITMotionTokenizer folder")
    motion.add_argument("--checkpoint", required=True, help="the reference's motion_tokenizer.bin")
    motion.add_argument("--output", required=True, help="folder to write (config.json + model.safetensors)")
    motion.add_argument("--num-attention-heads", type=int, default=8, help="heads (default %(default)s)")
    motion.set_defaults(handler=run_convert_motion_tokenizer)
    visual = targets.add_parser(
        "visual-tokenizer",
        help="visual_tokenizer/ (EVA ViT, tokenizer encoder, highres decoder) -> keyframe tokenizer + decoder folders",
    )
    visual.add_argument(
        "--checkpoint-dir",
        required=True,
        help="the reference's visual_tokenizer/ folder (eva_vitg_psz14.bin, tokenizer_encoder.bin, "
        "highres_tokenizer_decoder.bin)",
    )
    visual.add_argument(
        "--output", required=True, help="folder to write visual_tokenizer/ and visual_token_decoder/ in"
    )
    visual.add_argument("--vision-attention-heads", type=int, help="ViT heads (default: width / 88, 16 for ViT-g)")
    visual.add_argument(
        "--num-attention-heads", type=int, default=16, help="merger and decoder heads (default %(default)s)"
    )
    visual.set_defaults(handler=run_convert_visual_tokenizer)
    language = targets.add_parser(
        "language-model",
        help="language_model_sft/ (understanding) or language_model/ (generation) -> VideoLaVITForCausalLM folder",
    )
    language.add_argument("--checkpoint-dir", required=True, help="the reference's language_model(_sft)/ folder")
    language.add_argument("--output", required=True, help="folder to write (model, generation config, processor)")
    language.add_argument(
        "--visual-tokenizer", help="visual_tokenizer/ folder or a converted one (needed for language_model/)"
    )
    language.add_argument(
        "--motion-tokenizer", help="motion_tokenizer.bin or a converted folder (needed for language_model/)"
    )
    language.add_argument(
        "--keyframe-input",
        choices=("features", "codes"),
        help="keyframes as continuous features (understanding) or codes (generation); default: from the checkpoint",
    )
    language.add_argument("--num-attention-heads", type=int, default=16, help="merger heads (default %(default)s)")
    language.add_argument(
        "--motion-attention-heads", type=int, default=8, help="motion tokenizer heads (default %(default)s)"
    )
    language.add_argument("--vision-attention-heads", type=int, help="ViT heads (default: width / 88)")
    language.add_argument("--tokenizer-dir", help="folder of the LLaMA tokenizer files (default: --checkpoint-dir)")
    language.set_defaults(handler=run_convert_language_model)
    detokenizer = targets.add_parser(
        "detokenizer",
        help="video_detokenizer/, video_3d_unet.bin, image_detokenizer/ (+ tokenizers) -> one pipeline folder",
    )
    detokenizer.add_argument("--checkpoint-dir", required=True, help="the Video-LaVIT release folder")
    detokenizer.add_argument("--output", required=True, help="pipeline folder to write")
    detokenizer.add_argument("--motion-encoder-heads", type=int, default=8, help="(default %(default)s)")
    detokenizer.add_argument("--motion-tokenizer-heads", type=int, default=8, help="(default %(default)s)")
    detokenizer.add_argument("--num-attention-heads", type=int, default=16, help="token decoder heads (default 16)")
    detokenizer.add_argument("--vision-attention-heads", type=int, help="keyframe ViT heads (default: width / 88)")
    detokenizer.add_argument("--no-keyframe-model", action="store_true", help="video path only (no image_detokenizer)")
    detokenizer.set_defaults(handler=run_convert_detokenizer)

    generate = commands.add_parser("generate", help="text-to-video or image-to-video, written with export_to_video")
    generate.add_argument("prompt", nargs="?", help="the text prompt (optional with --image)")
    generate.add_argument("--model", required=True, help="a converted generation checkpoint (language_model/)")
    generate.add_argument("--detokenizer", required=True, help="a converted detokenizer pipeline folder")
    generate.add_argument(
        "-o", "--output", default="video_lavit.mp4", help="video file to write (default %(default)s)"
    )
    generate.add_argument("--image", help="image-to-video: the first keyframe")
    generate.add_argument("--clips", type=int, default=1, help="clips of 24 frames (text-to-video; default 1)")
    generate.add_argument("--height", type=int, default=320, help="multiple of 64 (default %(default)s)")
    generate.add_argument("--width", type=int, default=512, help="multiple of 64 (default %(default)s)")
    generate.add_argument("--steps", type=int, default=25, help="video denoising steps (default %(default)s)")
    generate.add_argument("--keyframe-steps", type=int, default=50, help="keyframe denoising steps (default 50)")
    generate.add_argument("--fps", type=int, default=6, help="frame rate of the file (default %(default)s)")
    generate.add_argument("--seed", type=int, help="makes the result reproducible")
    generate.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    generate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default %(default)s)")
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    generate.set_defaults(handler=run_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
