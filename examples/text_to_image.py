"""Text-to-image with Video-LaVIT: each prompt -> keyframe tokens (the language model) -> an image (the detokenizer's
keyframe decoder, an SDXL-architecture UNet) -> a PNG file.

    video-lavit convert language-model --checkpoint-dir Video-LaVIT-v1/language_model \\
        --visual-tokenizer Video-LaVIT-v1/visual_tokenizer --motion-tokenizer Video-LaVIT-v1/motion_tokenizer.bin \\
        --output converted/generation
    video-lavit convert detokenizer --checkpoint-dir Video-LaVIT-v1 --output converted/detokenizer
    python examples/text_to_image.py "a red car in the snow" "a cat asleep on a sofa" --seed 0 \\
        --model converted/generation --detokenizer converted/detokenizer --dtype bfloat16 --device cuda -o out

Writes out/image_0.png, out/image_1.png, ... (one per prompt, in order). The prompts are generated as one batch.
"""

import argparse
import os

from video_lavit import VideoLaVITGenerator
from video_lavit.loading import resolve_device_and_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", nargs="+", help="one image per prompt")
    parser.add_argument("--seed", type=int, help="makes the images reproducible")
    parser.add_argument("--model", default="converted/generation", help="`video-lavit convert language-model` output")
    parser.add_argument(
        "--detokenizer", default="converted/detokenizer", help="`video-lavit convert detokenizer` output"
    )
    parser.add_argument("--height", type=int, default=512, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--width", type=int, default=512, help="multiple of 64 (default %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="keyframe denoising steps (default %(default)s)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "bfloat16", "float32"),
        default="auto",
        help="auto: bfloat16 on a GPU, else float32",
    )
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, ...")
    parser.add_argument("-o", "--output-dir", default=".", help="folder for the PNG files (default: here)")
    args = parser.parse_args()
    device, dtype = resolve_device_and_dtype(args.device, args.dtype)

    generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
    images = generator.text_to_image(
        args.prompts, seed=args.seed, height=args.height, width=args.width, num_inference_steps=args.steps
    )
    os.makedirs(args.output_dir, exist_ok=True)
    for index, (prompt, image) in enumerate(zip(args.prompts, images)):
        path = os.path.join(args.output_dir, f"image_{index}.png")
        image.save(path)
        print(f"wrote {path}: {prompt!r}")


if __name__ == "__main__":
    main()
