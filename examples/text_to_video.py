"""Text-to-video with Video-LaVIT: a prompt -> keyframe and motion tokens (the language model) -> frames (the
detokenizer) -> an .mp4.

    video-lavit convert language-model --checkpoint-dir Video-LaVIT-v1/language_model \\
        --visual-tokenizer Video-LaVIT-v1/visual_tokenizer --motion-tokenizer Video-LaVIT-v1/motion_tokenizer.bin \\
        --output converted/generation
    video-lavit convert detokenizer --checkpoint-dir Video-LaVIT-v1 --output converted/detokenizer
    python examples/text_to_video.py "a boat sails across a calm lake at sunset" --clips 2 --seed 0 \\
        --model converted/generation --detokenizer converted/detokenizer --dtype bfloat16 --device cuda -o boat.mp4

Each clip is 24 frames (4 s at 6 fps); every later clip's keyframe starts from the previous clip's last frame.
"""

import argparse

from video_lavit import VideoLaVITGenerator
from video_lavit.loading import resolve_device_and_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", help="what the video shows")
    parser.add_argument("--clips", type=int, default=1, help="clips of 24 frames (default %(default)s)")
    parser.add_argument("--seed", type=int, help="makes the video reproducible")
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
    parser.add_argument("-o", "--output", default="video.mp4", help="the .mp4 to write (default %(default)s)")
    args = parser.parse_args()
    device, dtype = resolve_device_and_dtype(args.device, args.dtype)

    generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
    video = generator.text_to_video(
        args.prompt,
        num_clips=args.clips,
        seed=args.seed,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        keyframe_num_inference_steps=args.keyframe_steps,
    )
    path = generator.save_video(video.frames[0], args.output, fps=6)
    print(f"wrote {path}: {len(video.frames[0])} frames, {args.clips} clip(s)")


if __name__ == "__main__":
    main()
