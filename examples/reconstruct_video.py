"""Reconstruct a video from its own Video-LaVIT tokens: the video -> per clip of 24 frames (4 s at 6 fps) one keyframe
(visual tokens) and 135 motion tokens -> frames again with the detokenizer -> an .mp4.

What the tokens keep: the keyframe's layout and content and the coarse motion of each clip; everything else (fine
texture, exact colours, what happens between keyframes) is re-imagined by the detokenizer. Compare the output with
the input to see it.

    video-lavit convert language-model --checkpoint-dir Video-LaVIT-v1/language_model \\
        --visual-tokenizer Video-LaVIT-v1/visual_tokenizer --motion-tokenizer Video-LaVIT-v1/motion_tokenizer.bin \\
        --output converted/generation
    video-lavit convert detokenizer --checkpoint-dir Video-LaVIT-v1 --output converted/detokenizer
    python examples/reconstruct_video.py cooking.mp4 --max-clips 2 --seed 0 \\
        --model converted/generation --detokenizer converted/detokenizer --dtype bfloat16 --device cuda -o rebuilt.mp4
"""

import argparse

from video_lavit import VideoLaVITGenerator
from video_lavit.loading import resolve_device_and_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="the video file to tokenize and rebuild")
    parser.add_argument("--max-clips", type=int, default=2, help="clips of 4 s to rebuild (default %(default)s)")
    parser.add_argument("--seed", type=int, help="makes the result reproducible")
    parser.add_argument("--model", default="converted/generation", help="`video-lavit convert language-model` output")
    parser.add_argument(
        "--detokenizer", default="converted/detokenizer", help="`video-lavit convert detokenizer` output"
    )
    parser.add_argument("--height", type=int, default=320, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--width", type=int, default=512, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--steps", type=int, default=25, help="video denoising steps (default %(default)s)")
    parser.add_argument("--keyframe-steps", type=int, default=50, help="keyframe denoising steps (default 50)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "bfloat16", "float32"),
        default="auto",
        help="auto: bfloat16 on a GPU, else float32",
    )
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, ...")
    parser.add_argument("-o", "--output", default="reconstruction.mp4", help="the .mp4 to write (default %(default)s)")
    args = parser.parse_args()
    device, dtype = resolve_device_and_dtype(args.device, args.dtype)

    generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
    video = generator.reconstruct_video(
        args.video,
        max_clips=args.max_clips,
        seed=args.seed,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        keyframe_num_inference_steps=args.keyframe_steps,
    )
    path = generator.save_video(video.frames[0], args.output, fps=6)
    print(f"wrote {path}: {len(video.frames[0])} frames, {len(video.keyframes[0])} clip(s)")


if __name__ == "__main__":
    main()
