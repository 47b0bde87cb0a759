"""`video-lavit tour`: the main job on the built-in default, showing the model at work in under two minutes on a CPU.

With no arguments it writes a video of the package's procedural world (a coloured shape moving over a textured
background), then:
1. cuts it into clips and writes the tokenizer's input: keyframes and motion grids (`tokenize`, with the contact
   sheet);
2. loads the built-in world model (a tiny Video-LaVIT trained on the world, `video_lavit.world_model`), turns each
   clip into keyframe codes and motion codes, and decodes the motion codes back into a grid (the contact sheet's
   decoded-motion column);
3. asks the model the world's questions (colour, shape, direction) and prints its answers beside the truth;
4. writes `report.md` and `report.json`: what each step did, its figures and its time.

`--model DIR` runs a converted understanding or generation checkpoint instead, on `VIDEO` (or the world video),
with `--question` (default: describe the video).
"""

from __future__ import annotations

import json
import os
import time

import torch

from .errors import InvalidInputError
from .files import replace_file

DEFAULT_QUESTION = "Describe the video in detail."
_TOUR_SCENE = {"colour": "red", "shape": "circle", "direction": "right", "speed": "slow", "seed": 7}


def _step(report: dict, name: str, started: float, quiet: bool, **figures) -> None:
    seconds = time.perf_counter() - started
    report["steps"].append({"step": name, "seconds": round(seconds, 2), **figures})
    if not quiet:
        shown = ", ".join(f"{key} {value}" for key, value in figures.items() if not isinstance(value, (dict, list)))
        print(f"[{len(report['steps'])}] {name} ({seconds:.1f} s){': ' + shown if shown else ''}", flush=True)


def run_tour(
    output_dir: str | os.PathLike,
    video: str | None = None,
    model_dir: str | None = None,
    question: str | None = None,
    device: str = "cpu",
    quiet: bool = False,
    dtype=None,
) -> dict:
    """Run the tour (see the module docstring); returns the report, also written to `output_dir/report.json`."""
    from .modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
    from .processing.clip_export import check_output_folder, tokenize_video
    from .processing.processing_video_lavit import VideoLaVITProcessor
    from .training.world import make_world_video, world_questions
    from .world_model import world_model_path

    output_dir = os.fspath(output_dir)
    check_output_folder(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    report = {"output_dir": output_dir, "steps": []}
    started = time.perf_counter()
    truth = None
    if video is None:
        scene = dict(_TOUR_SCENE)
        video = make_world_video(**scene, path=os.path.join(output_dir, "world_video.mp4"))
        truth = {key: scene[key] for key in ("colour", "shape", "direction")}
        _step(report, "wrote the built-in world video", started, quiet, video=video,
              scene=f"a {scene['colour']} {scene['shape']} moving {scene['direction']}")  # fmt: skip
    elif not os.path.isfile(video):
        raise InvalidInputError(f"{video}: no such video file.")
    report["video"] = video

    started = time.perf_counter()
    folder = model_dir or world_model_path()
    if not os.path.isdir(folder):
        raise InvalidInputError(f"{folder}: no such model folder (--model takes a converted checkpoint folder).")
    options = {} if dtype is None else {"dtype": dtype}
    model = VideoLaVITForConditionalGeneration.from_pretrained(folder, **options).to(device).eval()
    processor = VideoLaVITProcessor.from_pretrained(folder)
    _step(report, "loaded the model", started, quiet, model="built-in world model" if model_dir is None else folder,
          parameters=sum(parameter.numel() for parameter in model.parameters()))  # fmt: skip

    started = time.perf_counter()
    stem = os.path.splitext(os.path.basename(video))[0]
    row = tokenize_video(
        processor.video_processor, video, output_dir, stem, model.model.motion_tokenizer, overwrite=True,
        progress=False if quiet else None,
    )  # fmt: skip
    _step(report, "cut the clips, tokenized their motion, drew the contact sheet", started, quiet,
          clips=row.get("clips"), tensors=os.path.join(output_dir, f"{stem}.safetensors"),
          contact_sheet=os.path.join(output_dir, f"{stem}.png"))  # fmt: skip

    started = time.perf_counter()
    with torch.no_grad():
        clips = processor.video_processor(video, return_tensors="pt")
        keyframes = model.tokenize_keyframes(clips["keyframe_pixel_values"])
        motion_codes = model.model.get_motion_codes(clips["motion_vectors"])
    tokens = {
        "clips": int(clips["num_clips"].sum()),
        "keyframe_tokens_per_clip": keyframes.token_counts.tolist(),
        "motion_codes_per_clip": int(motion_codes.shape[1]),
        "first_motion_codes": motion_codes[0, :12].tolist(),
    }
    _step(report, "turned the video into tokens", started, quiet, **tokens)

    started = time.perf_counter()
    questions = (
        {kind: item.question for kind, item in world_questions().items()}
        if model_dir is None and question is None
        else {"question": question or DEFAULT_QUESTION}
    )
    media = {"keyframe_tokens": keyframes, "motion_codes": motion_codes}
    answers = []
    for kind, text in questions.items():
        prompt = processor.apply_chat_template(
            [{"role": "user", "content": f"<video>\n{text}"}], tokenize=False, add_generation_prompt=True
        )
        inputs = processor(text=prompt, videos=clips, **media).to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=64 if model_dir else 4, do_sample=False)
        answer = processor.post_process_answer(
            processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        )
        entry = {"question": text, "answer": answer}
        if truth is not None and kind in truth:
            entry["truth"] = truth[kind]
        answers.append(entry)
        if not quiet:
            shown = f"  Q: {text}\n  A: {answer}" + (f"   (truth: {entry['truth']})" if "truth" in entry else "")
            print(shown, flush=True)
    report["answers"] = answers
    right = sum(entry.get("truth") == entry["answer"] for entry in answers if "truth" in entry)
    _step(report, "answered questions about the video", started, quiet,
          **({"right": f"{right} of {len(answers)}"} if truth is not None else {}))  # fmt: skip

    report["total_seconds"] = round(sum(step["seconds"] for step in report["steps"]), 2)
    with replace_file(os.path.join(output_dir, "report.json")) as file:
        file.write(json.dumps(report, indent=2).encode("utf-8"))
    with replace_file(os.path.join(output_dir, "report.md")) as file:
        file.write(_markdown(report, stem).encode("utf-8"))
    if not quiet:
        print(f"done in {report['total_seconds']:.1f} s: {os.path.join(output_dir, 'report.md')}")
    return report


def _markdown(report: dict, stem: str) -> str:
    lines = ["# Video-LaVIT tour", "", f"Video: `{report['video']}`", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {step['step']} | {step['seconds']} |" for step in report["steps"]]
    lines += ["", "## Answers", ""]
    for entry in report["answers"]:
        truth = f" (truth: {entry['truth']})" if "truth" in entry else ""
        lines.append(f"- **{entry['question']}** {entry['answer']}{truth}")
    lines += [
        "",
        "## Pictures",
        "",
        f"`{stem}.png`: one row a clip: its keyframe, the motion grid the tokenizer reads (colour is direction, "
        "brightness is speed), and the same motion decoded from the clip's motion codes.",
        "",
        f"![contact sheet]({stem}.png)",
        "",
    ]
    return "\n".join(lines)


__all__ = ["DEFAULT_QUESTION", "run_tour"]
