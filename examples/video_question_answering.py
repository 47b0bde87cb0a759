"""Ask questions about videos and images with a converted Video-LaVIT understanding checkpoint, in one batch.

    video-lavit convert language-model --checkpoint-dir Video-LaVIT-v1/language_model_sft \\
        --output converted/understanding
    python examples/video_question_answering.py --model converted/understanding \\
        --video cooking.mp4 "What is the person doing?" --image car.jpg "What color is the car?"

Keyframes are tokenized deterministically (the checkpoint's `keyframe_selection`, "argmax"); answers are decoded
greedily and cut at the reference's literal `\\n`.
"""

import argparse

from transformers import AutoModelForCausalLM, AutoProcessor

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit.loading import resolve_device_and_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder written by `video-lavit convert language-model`")
    parser.add_argument("--video", nargs=2, action="append", default=[], metavar=("VIDEO", "QUESTION"))
    parser.add_argument("--image", nargs=2, action="append", default=[], metavar=("IMAGE", "QUESTION"))
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"), help="auto: bf16 on a GPU"
    )
    args = parser.parse_args()
    if not args.video and not args.image:
        parser.error("ask at least one --video or --image question")

    processor = AutoProcessor.from_pretrained(args.model)
    dtype = resolve_device_and_dtype("auto", args.dtype)[1]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, device_map="auto")
    questions = [("video", path, question) for path, question in args.video]
    questions += [("image", path, question) for path, question in args.image]
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": question}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for kind, _, question in questions
    ]
    inputs = processor(
        text=prompts,
        videos=[path for kind, path, _ in questions if kind == "video"] or None,
        images=[path for kind, path, _ in questions if kind == "image"] or None,
        keyframe_tokenizer=model,  # the number of keyframe tokens depends on the picture
    )
    output = model.generate(
        **inputs,
        do_sample=False,
        max_new_tokens=args.max_new_tokens,
        stop_strings=["\\n"],
        tokenizer=processor.tokenizer,
    )
    answers = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    for (kind, path, question), answer in zip(questions, processor.post_process_answer(answers)):
        print(f"{path} ({kind}) - {question}\n  {answer}")


if __name__ == "__main__":
    main()
