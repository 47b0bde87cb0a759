"""Image-to-video with Video-LaVIT: the image is the keyframe; the language model samples 135 motion tokens for it
(guided by an optional prompt) and the detokenizer animates it into one 24-frame clip, written as an .mp4.

    video-lavit convert language-model --checkpoint-dir Video-LaVIT-v1/language_model \\
        --visual-tokenizer Video-LaVIT-v1/visual_tokenizer --motion-tokenizer Video-LaVIT-v1/motion_tokenizer.bin \\
        --output converted/generation
    video-lavit convert detokenizer --checkpoint-dir Video-LaVIT-v1 --output converted/detokenizer
    python examples/image_to_video.py --image beach.jpg "waves roll onto the sand" --seed 0 \\
        --model converted/generation --detokenizer converted/detokenizer --dtype bfloat16 --device cuda -o beach.mp4

The image is resized (not cropped) to --height x --width.
"""

import argparse

from PIL import Image

from video_lavit import VideoLaVITGenerator
from video_lavit.loading import resolve_device_and_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="", help="optional text about the motion")
    parser.add_argument("--image", required=True, help="the first frame (PNG, JPEG, ...)")
    parser.add_argument("--seed", type=int, help="makes the video reproducible")
    parser.add_argument("--model", default="converted/generation", help="`video-lavit convert language-model` output")
    parser.add_argument(
        "--detokenizer", default="converted/detokenizer", help="`video-lavit convert detokenizer` output"
    )
    parser.add_argument("--height", type=int, default=320, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--width", type=int, default=512, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--steps", type=int, default=25, help="video denoising steps (default %(default)s)")
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

    image = Image.open(args.image).convert("RGB")
    generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
    video = generator.image_to_video(
        image, args.prompt, seed=args.seed, height=args.height, width=args.width, num_inference_steps=args.steps
    )
    path = generator.save_video(video.frames[0], args.output, fps=6)
    print(f"wrote {path}: {len(video.frames[0])} frames")


if __name__ == "__main__":
    main()
