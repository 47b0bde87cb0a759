"""Questions per second of the batched video QA evaluator against one question at a time, same model, same run.

Ours: `predict_video_qa(model, processor, samples, path, batch_size=8)`: questions about one video together, each
video cut once and its keyframe tokens and motion codes computed once, 8 questions per `generate` call, predictions
appended to a JSON-lines file.
Baseline, the reference's way (its evaluation scripts answer one question per call): for each question, cut the
video with the video processor, build the prompt, `generate` with batch 1 (the model tokenizes the keyframe and the
motion in its forward). Both answer greedily with at most
`--max-new-tokens` new tokens and must give the same answers (checked). The model is the built-in world model (or
`--model`), the questions are the world task's (`world_qa_samples`, 3 kinds per video), asked
`--questions-per-video` times per video (the kinds in turn, each a sample of its own): 3 by default, 10 as in
ActivityNet-QA (MSVD-QA and MSRVTT-QA have about 25 per video). Each side runs `--repeats` times, alternating; the
best run counts. Goal: >= 3x on CPU.

Usage:
    python benchmarks/bench_evaluation.py                 # 16 videos, 48 questions
    python benchmarks/bench_evaluation.py --quick         # 4 videos
    python benchmarks/bench_evaluation.py --device cuda --dtype bfloat16 --model converted/understanding
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import cpu_name  # noqa: E402

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor  # noqa: E402
from video_lavit.evaluation.video_qa import predict_video_qa  # noqa: E402
from video_lavit.evaluation.world import world_qa_samples  # noqa: E402
from video_lavit.world_model import world_model_path  # noqa: E402


def prompt(processor, sample) -> str:
    conversation = [{"role": "user", "content": f"<video>\n{sample.question}"}]
    return processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def one_at_a_time(model, processor, samples, max_new_tokens: int) -> list[str]:
    answers = []
    for sample in samples:
        videos = processor.video_processor(sample.video, return_tensors="pt")
        inputs = processor(text=[prompt(processor, sample)], videos=videos, keyframe_tokenizer=model).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers += processor.post_process_answer(processor.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def batched(model, processor, samples, max_new_tokens: int, batch_size: int) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        records = predict_video_qa(model, processor, samples, os.path.join(folder, "predictions.jsonl"),
                                   batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False)  # fmt: skip
    return [record["pred"] for record in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="checkpoint folder (default: the built-in world model)")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--questions-per-video", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--quick", action="store_true", help="4 videos, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.repeats = 4, 1
    folder = args.model or world_model_path()
    dtype = getattr(torch, args.dtype)
    model = VideoLaVITForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(args.device).eval()
    processor = VideoLaVITProcessor.from_pretrained(folder)
    device = cpu_name() if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    print(f"device: {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as videos:
        kinds = world_qa_samples(args.videos, videos, seed=11, split="benchmark")
        samples = [
            dataclasses.replace(kinds[3 * (index // args.questions_per_video) + index % 3], id=f"q{index}")
            for index in range(args.videos * args.questions_per_video)
        ]
        batched(model, processor, samples[:3], args.max_new_tokens, args.batch_size)  # warm-up
        times = {"one at a time": [], f"batched ({args.batch_size})": []}
        answers = {}
        for _ in range(args.repeats):
            for name in times:
                started = time.perf_counter()
                if name == "one at a time":
                    answers[name] = one_at_a_time(model, processor, samples, args.max_new_tokens)
                else:
                    answers[name] = batched(model, processor, samples, args.max_new_tokens, args.batch_size)
                times[name].append(time.perf_counter() - started)
    baseline, ours = (min(values) for values in times.values())
    print(f"{len(samples)} questions about {args.videos} videos, model {folder}, {args.device} {args.dtype}")
    print(f"{'evaluator':<16} {'best s':>8} {'questions/s':>12}")
    for name, values in times.items():
        print(f"{name:<16} {min(values):>8.2f} {len(samples) / min(values):>12.2f}")
    same = answers["one at a time"] == answers[f"batched ({args.batch_size})"]
    print(f"speed-up {baseline / ours:.2f}x (goal >= 3x on CPU); same answers: {same}")


if __name__ == "__main__":
    main()
