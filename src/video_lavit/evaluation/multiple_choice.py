"""Multiple-choice video and image QA (Video-MME, MVBench, EgoSchema, NExT-QA MC, MMBench-style): reading the sets,
the prompts, answering by generation or by option log-likelihood, accuracy overall and per category.

The prompts follow lmms-eval's for each benchmark (`PROMPT_FORMATS`; the words are in `_PROMPTS`), greedy with 16
new tokens as lmms-eval generates them. Two ways to answer:
- `method="generate"`: the model writes a reply and `extract_choice` reads the option letter from it (an answer
  prefix such as "The best answer is" is dropped, then the first option letter standing alone, as `(B)`, `B.` or
  `B`, or, failing that, the one option whose text the reply holds). A reply with no letter is counted as
  `unparsed` and scored wrong, never guessed.
- `method="loglik"`: each option's text is scored as the assistant's reply (the sum of its tokens'
  log-probabilities after the same prompt) and the most likely option is the answer; no parsing.

Layouts read (`read_multiple_choice_dataset(source, benchmark=...)`, any `datasets` source, local or in the Hub
cache):
- `videomme` (`lmms-lab/Video-MME`): `videoID, question_id, question, options ["A. ...", ...], answer "A"`, with
  `duration, domain, sub_category, task_type` as categories;
- `mvbench` (`OpenGVLab/MVBench`, one configuration per subtask, split `train`): `video, question, candidates,
  answer` (the answer's text); the subtask is the category, and videos are looked for under the subtask's source
  folder of the MVBench video release (`MVBENCH_VIDEO_FOLDERS`), then in `video_dir` itself;
- `egoschema` (`lmms-lab/egoschema`, configuration `Subset` for the 500 questions with public answers):
  `question_idx, question, video_idx, option ["A. ...", ...], answer` (the option's index);
- `nextqa` (`lmms-lab/NExTQA`, configuration `MC`): `video, qid, question, a0..a4, answer` (index), `type` as the
  category;
- `mmbench` (`lmms-lab/MMBench`, images in the rows): `index, question, hint, A..E, answer` (letter),
  `category, l2-category`; scored row by row (plain accuracy, not MMBench's CircularEval, which counts a question
  right only when each of its option-shifted copies is);
- `generic`: `question, options` (list) and `answer` (letter, index or the option's text), a `video` file name or an
  `image`, and any `category` column.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import EvaluationDataError, InvalidInputError
from ..processing.video_processing_video_lavit import without_run_only_options
from .results import evaluation_results, write_results
from .video_qa import (
    find_video,
    generate_answers,
    load_evaluation_dataset,
    media_batch,
    media_prompt,
    run_predictions,
)

OPTION_LETTERS = "ABCDEFGHIJ"
_POST_LETTER = "Answer with the option's letter from the given choices directly."
_PROMPTS = {
    "videomme_pre": "Select the best answer to the following multiple-choice question based on the video. Respond "
    "with only the letter (A, B, C, or D) of the correct option.",
    "videomme_post": "The best answer is:",
}
BENCHMARK_SPLITS = {"videomme": "test", "mvbench": "train", "egoschema": "test", "nextqa": "test", "mmbench": "dev"}
# Where each MVBench subtask's videos lie in its video release (the folder is in the question files' `video`
# paths' base).
MVBENCH_VIDEO_FOLDERS = {
    "object_interaction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment",
    "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation",
    "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos",
    "object_shuffle": "perception/videos",
    "egocentric_navigation": "vlnqa",
    "moving_direction": "clevrer/video_validation",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video",
    "state_change": "perception/videos",
    "moving_attribute": "clevrer/video_validation",
    "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation",
    "action_count": "perception/videos",
}


@dataclass(frozen=True)
class MultipleChoiceSample:
    """One multiple-choice question about one video or image.

    Attributes:
        id (`str`): the question id.
        video_name (`str`): the media's name in the set.
        video (`str` or None): the video file (None for an image question).
        question (`str`): the question (without the options).
        options (`tuple[str, ...]`): the options' texts, without their letters.
        answer (`str`): the letter of the right option.
        prompt_format (`str`): the benchmark whose prompt is used (a key of `PROMPT_FORMATS`).
        categories (`dict[str, str]`): what accuracy is also broken down by (e.g. `{"task_type": ...}`).
        hint (`str`): context put before the question (MMBench's hint).
        error (`str` or None): why the sample cannot be answered (recorded, not scored).
        image (*optional*): the image (path or PIL image) of an image question.
    """

    id: str
    video_name: str
    video: str | None
    question: str
    options: tuple[str, ...]
    answer: str
    prompt_format: str = "default"
    categories: dict = field(default_factory=dict)
    hint: str = ""
    error: str | None = None
    image: object = None


def _lettered(options: Sequence[str], style: str = "{letter}. {option}") -> list[str]:
    return [style.format(letter=OPTION_LETTERS[index], option=option) for index, option in enumerate(options)]


def _prompt_default(sample: MultipleChoiceSample) -> str:  # EgoSchema, NExT-QA MC
    return "\n".join([sample.question.strip(), *_lettered(sample.options), _POST_LETTER])


def _prompt_videomme(sample: MultipleChoiceSample) -> str:
    return "\n".join(
        [_PROMPTS["videomme_pre"], sample.question, *_lettered(sample.options), _PROMPTS["videomme_post"]]
    )


def _prompt_mvbench(sample: MultipleChoiceSample) -> str:
    options = "".join(line + "\n" for line in _lettered(sample.options, "({letter}) {option}"))
    return f"Question:{sample.question}\nOption:\n{options}{_POST_LETTER}"


def _prompt_mmbench(sample: MultipleChoiceSample) -> str:
    lines = ([sample.hint.strip()] if sample.hint and sample.hint.strip() else []) + [sample.question.strip()]
    return "\n".join([*lines, *_lettered(sample.options), _POST_LETTER])


def _prompt_question_only(sample: MultipleChoiceSample) -> str:  # for option ranking: the options are the replies
    return sample.question.strip()


PROMPT_FORMATS = {
    "default": _prompt_default,
    "question_only": _prompt_question_only,
    "egoschema": _prompt_default,
    "nextqa": _prompt_default,
    "videomme": _prompt_videomme,
    "mvbench": _prompt_mvbench,
    "mmbench": _prompt_mmbench,
}


def format_prompt(sample: MultipleChoiceSample) -> str:
    """The user turn's text after the media placeholder (the benchmark's prompt, options lettered)."""
    if sample.prompt_format not in PROMPT_FORMATS:
        raise InvalidInputError(
            f"unknown prompt format {sample.prompt_format!r}; use one of {', '.join(PROMPT_FORMATS)}."
        )
    return PROMPT_FORMATS[sample.prompt_format](sample)


_ANSWER_PREFIXES = (
    "the best answer is",
    "the correct answer is",
    "the answer is",
    "the best option is",
    "the correct option is",
    "best answer:",
    "best option:",
    "answer:",
    "option:",
)


def extract_choice(reply: str, options: Sequence[str]) -> str | None:
    """The option letter a reply gives, or None when it gives none (see the module docstring)."""
    letters = OPTION_LETTERS[: len(options)]
    text = " ".join(str(reply).replace("</s>", " ").split())
    lowered = text.lower()
    for prefix in _ANSWER_PREFIXES:
        position = lowered.find(prefix)
        if position != -1:
            text, lowered = text[position + len(prefix) :], lowered[position + len(prefix) :]
    stripped = text.strip()
    match = (
        re.search(rf"[\(\[]([{letters}{letters.lower()}])[\)\]]", stripped)  # (B), [b]
        or re.match(rf"([{letters}])(?:[\.\):,]|\s*$)", stripped)  # "B", "B.", "B) ..." at the start
        or re.search(rf"(?<![A-Za-z])([{letters}])(?:[\.\):]|\s*$)", stripped)  # "... is B." / "... is B"
    )
    if match:
        return match.group(1).upper()
    found = sorted(
        (lowered.find(option.strip().lower()), -len(option.strip()), index)
        for index, option in enumerate(options)
        if option.strip() and option.strip().lower() in lowered
    )
    # The option whose text comes first in the reply (the longest, where one option's text starts another's).
    return letters[found[0][2]] if found else None


ANSWER_KINDS = {"videomme": "letter", "mmbench": "letter", "mvbench": "text", "egoschema": "index", "nextqa": "index"}


def _answer_letter(answer, options: Sequence[str], where: str, kind: str = "any") -> str:
    """The right option's letter from the set's answer: a letter, an index, or the option's text (`kind`; `"any"`
    tries the option's text first, so that numeric options such as MVBench's counts are never read as indices)."""
    letters = OPTION_LETTERS[: len(options)]
    value = None if isinstance(answer, bool) else answer
    text = value.strip() if isinstance(value, str) else None
    if kind in ("text", "any") and text is not None:
        for index, option in enumerate(options):
            if text.lower() == option.strip().lower():
                return letters[index]
    if kind in ("letter", "any") and text is not None:
        if len(text) == 1 and text.upper() in letters:
            return text.upper()
        match = re.fullmatch(rf"\(?([{letters}])[\.\)]\s.*", text)
        if match:
            return match.group(1)
    if kind in ("index", "any") and (isinstance(value, int) or (text is not None and text.isdigit())):
        index = int(value)
        if 0 <= index < len(options):
            return letters[index]
    expected = {"letter": "a letter", "index": "an option's index", "text": "an option's text"}.get(
        kind, f"{', '.join(letters)}, an index, or an option's text"
    )
    raise EvaluationDataError(
        f"{where}: the answer {answer!r} is not one of its {len(options)} options (expected {expected})."
    )


def _strip_letter(option: str, index: int) -> str:
    """ "A. text" -> "text" (the letter must be the option's own)."""
    match = re.fullmatch(rf"\(?{OPTION_LETTERS[index]}[\.\):]\s*(.*)", str(option).strip(), flags=re.DOTALL)
    return match.group(1) if match else str(option).strip()


def _media(video_dir, name, image=None, folders: Sequence[str] = ()) -> tuple[str | None, str | None]:
    if image is not None:
        return None, None
    if video_dir is None:
        raise EvaluationDataError("the questions are about videos: pass the folder of the videos (video_dir).")
    for folder in [*folders, ""]:
        found = find_video(os.path.join(os.fspath(video_dir), folder), str(name))
        if found:
            return found, None
    return None, f"video {name!r} not found in {os.fspath(video_dir)} (nor its subtask folder)"


def _image_of(value, image_dir, where: str):
    """An image column's value: a PIL image (datasets' `Image` feature) or a file name under `image_dir`."""
    if value is None or isinstance(value, str):
        if not value:
            return None, "no image"
        path = os.path.join(os.fspath(image_dir), value) if image_dir and not os.path.isabs(value) else value
        return path, None if os.path.isfile(path) else f"image {path} not found"
    return value, None


def read_multiple_choice_dataset(
    source,
    benchmark: str,
    video_dir: str | os.PathLike | None = None,
    split: str | None = None,
    name: str | None = None,
    image_dir: str | os.PathLike | None = None,
) -> list[MultipleChoiceSample]:
    """The samples of one multiple-choice set in `benchmark`'s layout (see the module docstring).

    Args:
        source: a `datasets` source (see `load_evaluation_dataset`).
        benchmark (`str`): `"videomme"`, `"mvbench"`, `"egoschema"`, `"nextqa"`, `"mmbench"` or `"generic"`.
        video_dir (`str`): the folder of the videos.
        split (`str`, *optional*): the split (default: the benchmark's, `BENCHMARK_SPLITS`, else `"test"`).
        name (`str`, *optional*): the configuration (MVBench's subtask, EgoSchema's `Subset`, NExT-QA's `MC`).
        image_dir (`str`, *optional*): the folder of image files named in an image column.

    Raises:
        `EvaluationDataError`: the source cannot be read, lacks the layout's columns, an answer is not one of its
            options, or ids repeat.
    """
    readers = {
        "videomme": _videomme,
        "mvbench": _mvbench,
        "egoschema": _egoschema,
        "nextqa": _nextqa,
        "mmbench": _mmbench,
        "generic": _generic,
    }
    if benchmark not in readers:
        raise InvalidInputError(f"unknown benchmark {benchmark!r}; use one of {', '.join(readers)}.")
    dataset = load_evaluation_dataset(source, split=split or BENCHMARK_SPLITS.get(benchmark, "test"), name=name)
    columns, required = set(dataset.column_names), _REQUIRED[benchmark]
    missing = [column for column in required if column not in columns]
    if missing:
        raise EvaluationDataError(
            f"the dataset lacks the column(s) {', '.join(missing)} of the {benchmark} layout "
            f"({', '.join(required)}); it has {', '.join(dataset.column_names)}."
        )
    samples = [readers[benchmark](row, index, video_dir, image_dir, name) for index, row in enumerate(dataset)]
    if len({sample.id for sample in samples}) != len(samples):
        raise EvaluationDataError(f"the {benchmark} set's question ids are not unique.")
    return samples


_REQUIRED = {
    "videomme": ("videoID", "question", "options", "answer"),
    "mvbench": ("video", "question", "candidates", "answer"),
    "egoschema": ("video_idx", "question", "option", "answer"),
    "nextqa": ("video", "question", "a0", "a1", "a2", "a3", "a4", "answer"),
    "mmbench": ("question", "A", "B", "answer", "image"),
    "generic": ("question", "options", "answer"),
}


def _sample(benchmark, sample_id, name, question, options, answer, video_dir, categories=None, image=None,
            folders=(), hint="", image_error=None) -> MultipleChoiceSample:  # fmt: skip
    where = f"{benchmark} question {sample_id}"
    if not isinstance(question, str) or not question.strip():
        raise EvaluationDataError(f"{where}: no question text.")
    options = tuple(str(option) for option in options)
    if len(options) < 2 or len(options) > len(OPTION_LETTERS):
        raise EvaluationDataError(f"{where}: {len(options)} options; a question needs 2 to {len(OPTION_LETTERS)}.")
    video, error = (None, None) if image_error else _media(video_dir, name, image, folders)
    prompt_format = benchmark if benchmark in PROMPT_FORMATS else "default"
    return MultipleChoiceSample(
        id=str(sample_id), video_name=str(name), video=video, question=question, options=options,
        answer=_answer_letter(answer, options, where, ANSWER_KINDS.get(benchmark, "any")), prompt_format=prompt_format,
        categories={key: str(value) for key, value in (categories or {}).items() if value is not None},
        hint=hint if isinstance(hint, str) else "", error=image_error or error, image=image,
    )  # fmt: skip


def _videomme(row, index, video_dir, image_dir, name):
    options = [_strip_letter(option, position) for position, option in enumerate(row["options"])]
    categories = {key: row.get(key) for key in ("duration", "domain", "sub_category", "task_type")}
    return _sample("videomme", row.get("question_id", index), row["videoID"], row["question"], options,
                   row["answer"], video_dir, categories)  # fmt: skip


def _mvbench(row, index, video_dir, image_dir, name):
    subtask = name or "mvbench"
    folders = [MVBENCH_VIDEO_FOLDERS[subtask]] if subtask in MVBENCH_VIDEO_FOLDERS else []
    return _sample("mvbench", f"{subtask}-{index}", row["video"], row["question"], row["candidates"], row["answer"],
                   video_dir, {"subtask": subtask}, folders=folders)  # fmt: skip


def _egoschema(row, index, video_dir, image_dir, name):
    options = [_strip_letter(option, position) for position, option in enumerate(row["option"])]
    return _sample("egoschema", row.get("question_idx", index), row["video_idx"], row["question"], options,
                   row["answer"], video_dir)  # fmt: skip


def _nextqa(row, index, video_dir, image_dir, name):
    sample_id = f"{row['video']}-{row['qid']}" if "qid" in row else index
    options = [str(row[f"a{position}"]).strip() for position in range(5)]
    return _sample("nextqa", sample_id, row["video"], row["question"], options, row["answer"], video_dir,
                   {"type": row.get("type")})  # fmt: skip


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip() != ""


def _mmbench(row, index, video_dir, image_dir, name):
    options = [str(row[letter]) for letter in OPTION_LETTERS if letter in row and _present(row[letter])]
    image, error = _image_of(row["image"], image_dir, "mmbench")
    categories = {key: row.get(key) for key in ("category", "l2-category") if _present(row.get(key))}
    hint = row.get("hint") if _present(row.get("hint")) else ""
    return _sample("mmbench", row.get("index", index), str(row.get("index", index)), row["question"], options,
                   row["answer"], video_dir, categories, image=image if error is None else None, hint=hint,
                   image_error=error)  # fmt: skip


def _generic(row, index, video_dir, image_dir, name):
    sample_id = next((row[key] for key in ("question_id", "id", "index") if key in row), index)
    categories = {key: row[key] for key in ("category", "type", "task_type") if key in row}
    if "image" in row and row["image"] is not None:
        image, error = _image_of(row["image"], image_dir, "generic")
        return _sample("generic", sample_id, str(row.get("image_name", sample_id)), row["question"], row["options"],
                       row["answer"], video_dir, categories, image=image if error is None else None,
                       image_error=error)  # fmt: skip
    if "video" not in row:
        raise EvaluationDataError("the generic layout needs a `video` or an `image` column.")
    return _sample("generic", sample_id, row["video"], row["question"], row["options"], row["answer"], video_dir,
                   categories)  # fmt: skip


@torch.no_grad()
def option_log_likelihoods(model, processor, sample: MultipleChoiceSample, media, text: str) -> list[float]:
    """Each option's text scored as the assistant's reply to the prompt: the sum of its tokens' log-probabilities
    (one forward over the options, the media repeated per option)."""
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": media_prompt(sample, text)}], tokenize=False, add_generation_prompt=True
    )
    count = len(sample.options)
    inputs = processor(text=[prompt] * count, **media_batch([media] * count))
    continuations = [processor.tokenizer(option, add_special_tokens=False)["input_ids"] for option in sample.options]
    width = max(len(ids) for ids in continuations)
    pad = processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None else 0
    tail = torch.full((count, width), pad, dtype=torch.long)
    tail_mask = torch.zeros((count, width), dtype=inputs["attention_mask"].dtype)
    for row, ids in enumerate(continuations):
        tail[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        tail_mask[row, : len(ids)] = 1
    prompt_length = inputs["input_ids"].shape[1]  # one prompt: every row has the same length
    inputs = inputs.to(model.device)
    extra = {key: value for key, value in inputs.items() if key not in ("input_ids", "attention_mask")}
    input_ids = torch.cat([inputs["input_ids"], tail.to(model.device)], dim=1)
    attention_mask = torch.cat([inputs["attention_mask"], tail_mask.to(model.device)], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
    scores = torch.log_softmax(logits[:, prompt_length - 1 : -1].float(), dim=-1)
    taken = scores.gather(-1, tail.to(scores.device)[..., None])[..., 0] * tail_mask.to(scores.device)
    return taken.sum(dim=1).tolist()


def predict_multiple_choice(
    model,
    processor,
    samples: Sequence[MultipleChoiceSample],
    predictions_path: str | os.PathLike,
    *,
    method: str = "generate",
    batch_size: int = 8,
    max_new_tokens: int = 16,
    processor_options: dict | None = None,
    prompt_format: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """Answer every sample not yet in `predictions_path` (resumable, data parallel, as `predict_video_qa`).

    `prompt_format` (a key of `PROMPT_FORMATS`) overrides each sample's benchmark prompt, e.g. `"question_only"`
    to rank the options after the bare question.

    Each record holds `pred` (the reply, or the chosen option's text for `"loglik"`), `choice` (the letter read
    from it, None when unparsed), the `categories`, and for `"loglik"` the options' `option_loglik`.
    """
    if method not in ("generate", "loglik"):
        raise InvalidInputError(f"method must be 'generate' or 'loglik', got {method!r}.")
    if prompt_format is not None:
        if prompt_format not in PROMPT_FORMATS:
            raise InvalidInputError(
                f"unknown prompt format {prompt_format!r}; use one of {', '.join(PROMPT_FORMATS)}."
            )
        samples = [dataclasses.replace(sample, prompt_format=prompt_format) for sample in samples]
    settings = {
        "checkpoint": getattr(model, "name_or_path", ""),
        "method": method,
        "prompt_format": prompt_format,
        "max_new_tokens": max_new_tokens,
        "processor_options": without_run_only_options(processor_options),
    }

    def answer(batch, media):
        texts = [format_prompt(sample) for sample in batch]
        if method == "generate":
            replies = generate_answers(model, processor, batch, media, texts, max_new_tokens, {})
            return [
                {"pred": reply, "choice": extract_choice(reply, sample.options), "categories": sample.categories}
                for sample, reply in zip(batch, replies)
            ]
        fields = []
        for sample, entry, text in zip(batch, media, texts):
            scores = option_log_likelihoods(model, processor, sample, entry, text)
            best = max(range(len(scores)), key=scores.__getitem__)
            fields.append({"pred": sample.options[best], "choice": OPTION_LETTERS[best], "option_loglik": scores,
                           "categories": sample.categories})  # fmt: skip
        return fields

    return run_predictions(model, processor, samples, predictions_path, answer, settings=settings,
                           batch_size=batch_size, processor_options=processor_options, progress=progress)  # fmt: skip


def _accuracy(records: Sequence[dict]) -> dict:
    answered = [record for record in records if record.get("error") is None]
    correct = sum(record.get("choice") == record["answer"] for record in answered)
    return {
        "accuracy": correct / len(answered) if answered else None,
        "correct": correct,
        "answered": len(answered),
        "unparsed": sum(record.get("choice") is None for record in answered),
        "errors": len(records) - len(answered),
    }


def multiple_choice_metrics(records: Sequence[dict]) -> dict:
    """Accuracy over the answered samples (an unparsed reply counts as wrong), with the counts, and per category:
    `{"overall": {...}, "per_category": {field: {value: {...}}}}`."""
    per_category: dict[str, dict[str, list]] = {}
    for record in records:
        for key, value in (record.get("categories") or {}).items():
            per_category.setdefault(key, {}).setdefault(value, []).append(record)
    return {
        "overall": _accuracy(records),
        "per_category": {
            key: {value: _accuracy(group) for value, group in sorted(groups.items())}
            for key, groups in sorted(per_category.items())
        },
    }


def evaluate_multiple_choice(
    model,
    processor,
    samples: Sequence[MultipleChoiceSample],
    output_dir: str | os.PathLike,
    *,
    method: str = "generate",
    batch_size: int = 8,
    max_new_tokens: int = 16,
    processor_options: dict | None = None,
    prompt_format: str | None = None,
    checkpoint: str = "",
    dataset: dict | None = None,
    progress: bool = True,
) -> dict:
    """Answer, score and write a multiple-choice set (`predictions.jsonl`, `results.json`; a rerun resumes).

    The results' metrics are `multiple_choice` (overall accuracy and counts) and `per_category` (the same, by each
    category field and value); its parameters hold the method, the prompt formats and their words.
    """
    from accelerate import PartialState

    output_dir = os.fspath(output_dir)
    predictions = os.path.join(output_dir, "predictions.jsonl")
    records = predict_multiple_choice(model, processor, samples, predictions, method=method, batch_size=batch_size,
                                      max_new_tokens=max_new_tokens, processor_options=processor_options,
                                      prompt_format=prompt_format, progress=progress)  # fmt: skip
    if prompt_format is not None:
        samples = [dataclasses.replace(sample, prompt_format=prompt_format) for sample in samples]
    scored = multiple_choice_metrics(records)
    formats = sorted({sample.prompt_format for sample in samples})
    example = {name: format_prompt(next(s for s in samples if s.prompt_format == name)) for name in formats}
    is_image = any(sample.image is not None for sample in samples)
    parameters = {
        "method": method,
        "prompt_formats": formats,
        "prompt_examples": example,
        "media_placeholder": "<image>" if is_image else "<video>",
        "chat_template": "the processor's, no system prompt override",
        "generation": {"do_sample": False, "num_beams": 1, "max_new_tokens": max_new_tokens}
        if method == "generate"
        else None,
        "loglik": "sum of the option text's token log-probabilities as the reply" if method == "loglik" else None,
        "unparsed": "scored wrong",
        "batch_size": batch_size,
        "video_processor": {**processor.video_processor.to_dict(), **(processor_options or {})},
        "samples": len(samples),
    }
    metrics = {"multiple_choice": scored["overall"], "per_category": scored["per_category"]}
    results = evaluation_results("multiple-choice", checkpoint, metrics, parameters, per_sample_path=predictions,
                                 dataset=dataset)  # fmt: skip
    if is_image:
        results["hub_task_type"] = "image-text-to-text"
    if PartialState().is_main_process:
        write_results(output_dir, results)
    return results


__all__ = [
    "BENCHMARK_SPLITS",
    "MVBENCH_VIDEO_FOLDERS",
    "MultipleChoiceSample",
    "OPTION_LETTERS",
    "PROMPT_FORMATS",
    "evaluate_multiple_choice",
    "extract_choice",
    "format_prompt",
    "multiple_choice_metrics",
    "option_log_likelihoods",
    "predict_multiple_choice",
    "read_multiple_choice_dataset",
]
