"""Open-ended video QA (MSVD-QA, MSRVTT-QA, ActivityNet-QA): reading the sets, batched answers, scoring.

Layouts read:
- Video-ChatGPT's two files: `test_q.json` (`[{video_name, question, question_id}]`) and `test_a.json`
  (`[{answer, question_id}]`), aligned entry by entry, with the videos in a folder by `video_name` with or without
  an extension (`read_video_chatgpt`);
- the Hub layout lmms-eval uses (e.g. `lmms-eval/ActivityNetQA`, formerly `lmms-lab/ActivityNetQA`): rows of
  `video_name, question_id, question, answer`, from a `datasets.Dataset`, a local folder or file that
  `datasets.load_dataset` reads, or a Hub id already in the local cache (nothing is downloaded)
  (`read_video_qa_dataset`).

A sample that cannot be answered (its video missing, no answer in the answer file) is kept with its `error`: it is
written to the predictions with that error, counted, and never scored as wrong or right.

`predict_video_qa` answers with greedy decoding in batches (each video cut and tokenized once, however many
questions it has) and appends each batch's predictions to a JSON-lines file (`id, video_name, question, answer,
pred`, or `error`) as they come, so a run that stops resumes where it stopped. Under `accelerate launch` (or
`torchrun`) each process answers its share of the samples and the first one merges them, in sample order.
`exact_match_metrics` scores them offline (normalized exact match); `video_lavit.evaluation.judge` by the GPT-judge
protocol.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import torch
from tqdm.auto import tqdm

from ..errors import EvaluationDataError, InvalidInputError, VideoLaVITError
from ..media_tokenizers.token_layout import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER
from ..processing.video_processing_video_lavit import without_run_only_options

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".gif")
QA_COLUMNS = ("video_name", "question", "answer")


@dataclass(frozen=True)
class VideoQASample:
    """One question about one video.

    Attributes:
        id (`str`): the question id.
        video_name (`str`): the video's name in the set.
        video (`str` or None): the video file found for it.
        question (`str`), answer (`str`): the question and its reference answer.
        error (`str` or None): why the sample cannot be answered (then it is recorded, not scored).
        image (*optional*): for image QA, the image (a local file path or a PIL image) asked about instead of a
            video (`video` is then None and `video_name` names the image).
    """

    id: str
    video_name: str
    video: str | None
    question: str
    answer: str
    error: str | None = None
    image: object = None


def find_video(video_dir: str | os.PathLike, video_name: str) -> str | None:
    """The file of `video_name` in `video_dir`: the name as it is, else with one of `VIDEO_EXTENSIONS` (the first
    that exists, in that order), also after an `v_` prefix is added (ActivityNet's file names)."""
    folder = os.fspath(video_dir)
    for name in (video_name, f"v_{video_name}"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
        for extension in VIDEO_EXTENSIONS:
            if os.path.isfile(path + extension):
                return path + extension
    return None


def _load_json_list(path: str, what: str) -> list:
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except FileNotFoundError as error:
        raise EvaluationDataError(f"{path}: no such {what} file.") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvaluationDataError(f"{path}: not a JSON file ({error}); pass Video-ChatGPT's {what} file.") from error
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise EvaluationDataError(f"{path}: the {what} file must hold a JSON list of objects.")
    return value


def _sample(entry_id, video_name, question, answer, video_dir, where: str) -> VideoQASample:
    if not isinstance(video_name, str) or not video_name:
        raise EvaluationDataError(f"{where}: question {entry_id} has no video_name.")
    if not isinstance(question, str) or not question.strip():
        raise EvaluationDataError(f"{where}: question {entry_id} has no question text.")
    video = find_video(video_dir, video_name)
    error = None
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        error = "no reference answer"
    elif video is None:
        error = f"video {video_name!r} not found in {os.fspath(video_dir)} (with any of {', '.join(VIDEO_EXTENSIONS)})"
    return VideoQASample(str(entry_id), video_name, video, question, "" if answer is None else str(answer), error)


def read_video_chatgpt(
    questions_path: str | os.PathLike, answers_path: str | os.PathLike, video_dir: str | os.PathLike
) -> list[VideoQASample]:
    """The samples of Video-ChatGPT's `test_q.json` / `test_a.json` pair (see the module docstring).

    Raises:
        `EvaluationDataError`: a missing or malformed file, files of different lengths, an entry whose
            `question_id` differs from its answer's, or a question without its fields.
    """
    questions_path, answers_path = os.fspath(questions_path), os.fspath(answers_path)
    questions = _load_json_list(questions_path, "questions")
    answers = _load_json_list(answers_path, "answers")
    if len(questions) != len(answers):
        raise EvaluationDataError(
            f"{questions_path} holds {len(questions)} questions but {answers_path} holds {len(answers)} answers; "
            "pass the two files of one set (they are read entry by entry)."
        )
    samples, seen = [], set()
    for index, (question, answer) in enumerate(zip(questions, answers)):
        question_id = question.get("question_id", index)
        if answer.get("question_id", question_id) != question_id:
            raise EvaluationDataError(
                f"entry {index}: question_id {question_id!r} in {questions_path} but {answer.get('question_id')!r} "
                f"in {answers_path}; the files must list the same questions in the same order."
            )
        if str(question_id) in seen:
            raise EvaluationDataError(f"{questions_path}: question_id {question_id!r} appears twice.")
        seen.add(str(question_id))
        samples.append(
            _sample(
                question_id,
                question.get("video_name"),
                question.get("question"),
                answer.get("answer"),
                video_dir,
                questions_path,
            )
        )
    return samples


def _cached_hub_dataset(repo_id: str) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError) as error:
        raise EvaluationDataError(
            f"{repo_id}: not a local folder or file, and not in the local Hub cache. Nothing is downloaded at run "
            f"time: download it first (`hf download --repo-type dataset {repo_id}`) or pass its folder."
        ) from error


def load_evaluation_dataset(source, split: str = "test", name: str | None = None) -> datasets.Dataset:
    """One split of an evaluation set, read locally (nothing is downloaded).

    Args:
        source: a `datasets.Dataset` / `DatasetDict`, a folder saved by `save_to_disk`, a local folder or data file
            that `datasets.load_dataset` reads (Parquet, JSON, CSV), or a Hub dataset id in the local cache.
        split (`str`, *optional*, defaults to `"test"`): the split of a `DatasetDict` or of a multi-split source.
        name (`str`, *optional*): the configuration of a multi-config source (e.g. an MVBench subtask).

    Raises:
        `EvaluationDataError`: the source cannot be read or lacks the split.
    """
    dataset = source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            if os.path.isdir(path) and (
                os.path.isfile(os.path.join(path, "dataset_info.json"))
                or os.path.isfile(os.path.join(path, "dataset_dict.json"))
            ):
                dataset = datasets.load_from_disk(path)
            elif os.path.exists(path):
                dataset = _load_local(path, name, split)
            elif re.fullmatch(r"[\w.-]+(/[\w.-]+)?", path) and not path.startswith("."):  # a Hub id
                dataset = _load_local(_cached_hub_dataset(path), name, split)
            else:
                raise EvaluationDataError(f"{path}: no such file or folder.")
        except EvaluationDataError:
            raise
        except (ValueError, OSError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
            raise EvaluationDataError(f"{path}: cannot be read as a dataset ({error}).") from error
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise EvaluationDataError(f"the dataset has no split {split!r}; its splits are {', '.join(dataset)}.")
        dataset = dataset[split]
    if not isinstance(dataset, datasets.Dataset):
        raise EvaluationDataError(f"cannot read {type(source).__name__} as an evaluation dataset.")
    return dataset


def read_video_qa_dataset(
    source, video_dir: str | os.PathLike, split: str = "test", name: str | None = None
) -> list[VideoQASample]:
    """The samples of a dataset in the Hub layout (`video_name, question_id, question, answer`).

    Args:
        source: a `datasets.Dataset` / `DatasetDict`, a folder saved by `save_to_disk`, a local folder or data file
            that `datasets.load_dataset` reads (Parquet, JSON, CSV), or a Hub dataset id in the local cache.
        video_dir (`str`): the folder of the videos.
        split (`str`, *optional*, defaults to `"test"`): the split of a `DatasetDict` or of a multi-split source.
        name (`str`, *optional*): the configuration of a multi-config source.

    Raises:
        `EvaluationDataError`: the source cannot be read, lacks the split or the layout's columns.
    """
    dataset = load_evaluation_dataset(source, split=split, name=name)
    missing = [column for column in QA_COLUMNS if column not in dataset.column_names]
    if missing:
        raise EvaluationDataError(
            f"the dataset lacks the column(s) {', '.join(missing)} of the video QA layout "
            f"(video_name, question_id, question, answer); it has {', '.join(dataset.column_names)}."
        )
    ids = dataset["question_id"] if "question_id" in dataset.column_names else list(range(len(dataset)))
    samples = []
    for index, (video_name, question, answer) in enumerate(
        zip(dataset["video_name"], dataset["question"], dataset["answer"])
    ):
        samples.append(_sample(ids[index], video_name, question, answer, video_dir, "the dataset"))
    if len({sample.id for sample in samples}) != len(samples):
        raise EvaluationDataError("the dataset's question_id values are not unique.")
    return samples


def _load_local(path: str, name: str | None, split: str):
    if os.path.isfile(path):
        extension = os.path.splitext(path)[1].lower().lstrip(".")
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(extension)
        if builder is None:
            raise EvaluationDataError(f"{path}: not a Parquet, JSON or CSV file.")
        return datasets.load_dataset(builder, data_files={split: path})  # one file: the split asked for
    return datasets.load_dataset(path, name=name)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces: the usual QA normalisation."""
    text = text.lower().replace("</s>", " ")
    text = "".join(" " if character in string.punctuation else character for character in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match_metrics(records: Sequence[dict]) -> dict:
    """Normalized exact match over prediction records: `accuracy` over the answered samples, and the counts."""
    answered = [record for record in records if record.get("error") is None]
    correct = sum(normalize_answer(record["pred"]) == normalize_answer(record["answer"]) for record in answered)
    return {
        "accuracy": correct / len(answered) if answered else None,
        "correct": correct,
        "answered": len(answered),
        "errors": len(records) - len(answered),
    }


def read_predictions(path: str | os.PathLike) -> dict[str, dict]:
    """The records of a predictions file by id (a line cut by an interruption is ignored)."""
    records = {}
    if not os.path.isfile(path):
        return records
    with open(path, encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                records[str(record["id"])] = record
    return records


def _drop_torn_tail(path: str) -> None:
    """Cut a last line that an interruption left without its newline, so that appended records start a line."""
    if not os.path.isfile(path):
        return
    with open(path, "rb+") as file:
        data = file.read()
        if data and not data.endswith(b"\n"):
            file.truncate(data.rfind(b"\n") + 1)


def _append(path: str, records: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
        file.flush()
        os.fsync(file.fileno())


class _VideoCache:
    """The media of the last `size` samples, cut and tokenized (keyframe tokens, and motion codes for videos) once
    each: the questions about one video come together."""

    def __init__(self, model, processor, size: int, options: dict):
        self.model, self.processor, self.size, self.options = model, processor, size, options
        self.entries = OrderedDict()

    @staticmethod
    def key(sample):
        if sample.image is None:
            return sample.video
        return ("image", sample.image if isinstance(sample.image, str) else sample.id)

    @torch.no_grad()
    def get(self, sample):
        key = self.key(sample)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        try:
            if sample.image is not None:
                pixels = self.processor(images=[sample.image], return_tensors="pt", **self.options)["pixel_values"]
                value = {"images": pixels, "keyframe_tokens": self.model.tokenize_keyframes(pixels)}
            else:
                clips = self.processor.video_processor(sample.video, return_tensors="pt", **self.options)
                value = {
                    "videos": clips,
                    "keyframe_tokens": self.model.tokenize_keyframes(clips["keyframe_pixel_values"]),
                    "motion_codes": self.model.model.get_motion_codes(clips["motion_vectors"]),
                }
        except VideoLaVITError as error:
            value = error
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


def media_prompt(sample, text: str) -> str:
    """The user turn's text: the sample's `<video>` (or `<image>`) placeholder, a new line, then `text`."""
    return f"{IMAGE_PLACEHOLDER if sample.image is not None else VIDEO_PLACEHOLDER}\n{text}"


def _record(sample: VideoQASample, pred: str | None = None, error: str | None = None) -> dict:
    record = {
        "id": sample.id,
        "video_name": sample.video_name,
        "question": sample.question,
        "answer": sample.answer,
        "pred": pred,
    }
    if getattr(sample, "categories", None):  # multiple choice: per-category counts include the errors
        record["categories"] = sample.categories
    if error is not None:
        record["error"] = error
    return record


def media_batch(entries: list) -> dict:
    """The processor's media arguments for a batch of tokenized videos, or of tokenized images (`_VideoCache`
    entries, all of one kind)."""
    from ..modeling.modeling_video_lavit import VideoLaVITKeyframeTokens

    tokens = [entry["keyframe_tokens"] for entry in entries]
    codes = None if tokens[0].codes is None else torch.cat([token.codes for token in tokens])
    features = None if tokens[0].features is None else torch.cat([token.features for token in tokens])
    keyframe_tokens = VideoLaVITKeyframeTokens(
        token_counts=torch.cat([token.token_counts for token in tokens]), codes=codes, features=features
    )
    if "images" in entries[0]:
        return {"images": torch.cat([entry["images"] for entry in entries]), "keyframe_tokens": keyframe_tokens}
    videos = [entry["videos"] for entry in entries]
    return {
        "videos": {
            "keyframe_pixel_values": torch.cat([video["keyframe_pixel_values"] for video in videos]),
            "motion_vectors": torch.cat([video["motion_vectors"] for video in videos]),
            "num_clips": torch.cat([video["num_clips"] for video in videos]),
        },
        "keyframe_tokens": keyframe_tokens,
        "motion_codes": torch.cat([entry["motion_codes"] for entry in entries]),
    }


@torch.no_grad()
def answer_video_questions(
    model,
    processor,
    samples: Sequence[VideoQASample],
    clips: list,
    max_new_tokens: int,
    generation_kwargs: dict,
    post_prompt: str = "",
) -> list[str]:
    """Greedy answers to one batch of questions whose media are cut and tokenized (`clips`: one `_VideoCache`
    entry per sample, all videos or all images); each prompt is the media, a new line, the question and
    `post_prompt`."""
    return generate_answers(
        model, processor, samples, clips, [sample.question + post_prompt for sample in samples], max_new_tokens,
        generation_kwargs,
    )  # fmt: skip


@torch.no_grad()
def generate_answers(
    model, processor, samples, clips: list, texts: Sequence[str], max_new_tokens: int, generation_kwargs: dict
) -> list[str]:
    """Greedy replies to a batch of user turns (`texts`, after each sample's media placeholder)."""
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": media_prompt(sample, text)}], tokenize=False, add_generation_prompt=True
        )
        for sample, text in zip(samples, texts)
    ]
    inputs = processor(text=prompts, **media_batch(clips))
    inputs = inputs.to(model.device)
    options = {"do_sample": False, "num_beams": 1, **generation_kwargs}
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, **options)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return processor.post_process_answer(processor.batch_decode(new_tokens, skip_special_tokens=True))


def predict_video_qa(
    model,
    processor,
    samples: Sequence[VideoQASample],
    predictions_path: str | os.PathLike,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    processor_options: dict | None = None,
    generation_kwargs: dict | None = None,
    post_prompt: str = "",
    progress: bool = True,
) -> list[dict]:
    """Answer every sample not yet in `predictions_path`, appending batch by batch; return every record in sample
    order.

    Args:
        model, processor: a Video-LaVIT understanding (or generation) checkpoint and its processor.
        samples (`list[VideoQASample]`): the questions (about videos, or about images for image QA).
        predictions_path (`str`): the JSON-lines file of predictions (created, or resumed).
        batch_size (`int`, *optional*, defaults to 8): questions per `generate` call.
        max_new_tokens (`int`, *optional*, defaults to 32): longest answer.
        processor_options (`dict`, *optional*): options of the video processor (e.g. `max_clips`).
        generation_kwargs (`dict`, *optional*): more `generate` options (greedy by default).
        post_prompt (`str`, *optional*): text put after each question (e.g. GQA's "Answer the question using a
            single word or phrase.").
        progress (`bool`, *optional*, defaults to `True`): show a progress bar.

    Under `accelerate launch` / `torchrun` with N processes, process r answers samples r, r + N, ... into
    `predictions_path` + `.rank{r}`; the first process then merges every part into `predictions_path`.
    """
    settings = {
        "checkpoint": getattr(model, "name_or_path", ""),
        "max_new_tokens": max_new_tokens,
        "processor_options": without_run_only_options(processor_options),
        "generation_kwargs": generation_kwargs or {},
    }
    if post_prompt:
        settings["post_prompt"] = post_prompt

    def answer(batch_samples, clips):
        answers = answer_video_questions(model, processor, batch_samples, clips, max_new_tokens,
                                         dict(generation_kwargs or {}), post_prompt)  # fmt: skip
        return [{"pred": text} for text in answers]

    return run_predictions(model, processor, samples, predictions_path, answer, settings=settings,
                           batch_size=batch_size, processor_options=processor_options, progress=progress)  # fmt: skip


def run_predictions(
    model,
    processor,
    samples: Sequence,
    predictions_path: str | os.PathLike,
    answer_batch,
    *,
    settings: dict,
    batch_size: int = 8,
    processor_options: dict | None = None,
    progress: bool = True,
) -> list[dict]:
    """The resumable, data-parallel loop behind every question-answering task.

    `answer_batch(samples, media)` answers a batch of samples (all about videos or all about images; `media` holds
    each one's cut and tokenized media) and returns one dict of record fields per sample. Records are appended to
    `predictions_path` batch by batch; a rerun with the same `settings` (written beside it) keeps every answered
    record whose sample is unchanged and retries the rest. Returns every record in sample order.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if len({sample.id for sample in samples}) != len(samples):
        raise InvalidInputError("the samples' ids must be unique (they key the resumable predictions).")
    from accelerate import PartialState

    # On CPU, accelerate sets up gloo across the launched processes only when asked for CPU.
    state = PartialState(cpu=model.device.type == "cpu")
    path = os.fspath(predictions_path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if state.is_main_process:
        _check_settings(path, settings)
        _fold_parts(path)  # parts left by an interrupted multi-process run
    state.wait_for_everyone()
    done = _still_valid(read_predictions(path), samples)
    options = dict(processor_options or {})
    if state.num_processes > 1:
        part_path = f"{path}.rank{state.process_index}"
        mine = [sample for index, sample in enumerate(samples) if index % state.num_processes == state.process_index]
        done.update(_still_valid(read_predictions(part_path), samples))
        _predict(model, processor, mine, part_path, done, answer_batch, batch_size, options,
                 progress and state.is_local_main_process)  # fmt: skip
        state.wait_for_everyone()
        if state.is_main_process:
            _fold_parts(path, order=[sample.id for sample in samples])
        state.wait_for_everyone()
    else:
        _predict(model, processor, samples, path, done, answer_batch, batch_size, options, progress)
    records = read_predictions(path)  # the last record of an id counts (a retried error comes after it)
    return [records[sample.id] for sample in samples if sample.id in records]


def _check_settings(path: str, settings: dict) -> None:
    """Predictions resume only with the checkpoint and generation settings that made them."""
    settings_path = f"{path}.settings.json"
    if os.path.isfile(settings_path) and os.path.isfile(path):
        with open(settings_path, encoding="utf-8") as file:
            previous = json.load(file)
        if previous != json.loads(json.dumps(settings)):
            changed = sorted(key for key in settings if previous.get(key) != json.loads(json.dumps(settings))[key])
            raise InvalidInputError(
                f"{path}: holds predictions made with other settings ({', '.join(changed)} differ); resume with the "
                "same ones, or write to a new folder."
            )
    with open(settings_path, "w", encoding="utf-8") as file:
        json.dump(settings, file, indent=2)


def _still_valid(records: dict[str, dict], samples: Sequence[VideoQASample]) -> dict[str, dict]:
    """The records that stand: answered (an error is retried) and about the sample as it is now."""
    current = {sample.id: sample for sample in samples}
    return {
        key: record
        for key, record in records.items()
        if key in current
        and record.get("error") is None
        and (record.get("question"), record.get("answer"), record.get("video_name"))
        == (current[key].question, current[key].answer, current[key].video_name)
    }


def _fold_parts(path: str, order: list[str] | None = None) -> None:
    """Merge every `path.rank*` part into `path` (in `order` when given), then remove the parts."""
    import glob

    parts = sorted(glob.glob(glob.escape(path) + ".rank*"))
    if not parts:
        return
    merged = read_predictions(path)
    for part in parts:
        merged.update(read_predictions(part))
    keys = [key for key in order if key in merged] if order is not None else list(merged)
    if order is not None:
        keys += [key for key in merged if key not in set(order)]
    _write_all(path, [merged[key] for key in keys])
    for part in parts:
        os.remove(part)


def _write_all(path: str, records: list[dict]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def _predict(model, processor, samples, path, done, answer_batch, batch_size, options, progress) -> None:
    _drop_torn_tail(path)
    pending = [sample for sample in samples if sample.id not in done]
    # Questions about one video together, so that each video is cut and tokenized once.
    order = {}
    for sample in pending:
        order.setdefault(_VideoCache.key(sample) or "", len(order))
    pending.sort(key=lambda sample: order[_VideoCache.key(sample) or ""])
    cache = _VideoCache(model, processor, size=2 * batch_size, options=options)
    bar = tqdm(total=len(samples), initial=len(samples) - len(pending), desc="answering", unit="question",
               disable=not progress)  # fmt: skip

    def flush(batch):
        fields = answer_batch([item[0] for item in batch], [item[1] for item in batch])
        _append(path, [{**_record(item[0]), **extra} for item, extra in zip(batch, fields)])
        bar.update(len(batch))

    try:
        batch: list[tuple[object, object]] = []
        for sample in pending:
            error = sample.error
            if error is None:
                clips = cache.get(sample)
                if isinstance(clips, VideoLaVITError):
                    error = f"{type(clips).__name__}: {clips}"
                else:
                    if batch and ("images" in batch[0][1]) != ("images" in clips):  # one kind of media a batch
                        flush(batch)
                        batch = []
                    batch.append((sample, clips))
            if error is not None:  # recorded with its error, never scored
                _append(path, [_record(sample, error=error)])
                bar.update(1)
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    finally:
        bar.close()


def evaluate_video_qa(
    model,
    processor,
    samples: Sequence[VideoQASample],
    output_dir: str | os.PathLike,
    *,
    judge=None,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    processor_options: dict | None = None,
    checkpoint: str = "",
    dataset: dict | None = None,
    post_prompt: str = "",
    task: str = "video-qa",
    progress: bool = True,
) -> dict:
    """Answer, score and write the results of an open-ended video QA set (resumable: rerun with the same folder);
    image QA sets (samples with `image`) go the same way, with `task="image-qa"`.

    Writes `predictions.jsonl`, and with a `judge` ([`GPTJudge`]) `verdicts.jsonl` and `judge_cache.jsonl`, then
    `results.json` with the metrics `exact_match` and `gpt_judge` (accuracy = yes / (yes + no), mean score, and the
    counts of unparsed replies and failed calls).

    Returns:
        The results dict.
    """
    from .judge import judge_metrics, verdict_record
    from .results import evaluation_results, write_results

    output_dir = os.fspath(output_dir)
    predictions = os.path.join(output_dir, "predictions.jsonl")
    records = predict_video_qa(model, processor, samples, predictions, batch_size=batch_size,
                               max_new_tokens=max_new_tokens, processor_options=processor_options,
                               post_prompt=post_prompt, progress=progress)  # fmt: skip
    metrics = {"exact_match": exact_match_metrics(records)}
    is_image = any(sample.image is not None for sample in samples)
    placeholder = "<image>" if is_image else "<video>"
    parameters = {
        "prompt": f"{placeholder}\n{{question}}{post_prompt}",
        "chat_template": "the processor's, no system prompt override",
        "generation": {"do_sample": False, "num_beams": 1, "max_new_tokens": max_new_tokens},
        "batch_size": batch_size,
        "video_processor": {**processor.video_processor.to_dict(), **(processor_options or {})},
        "samples": len(samples),
    }
    from accelerate import PartialState

    if judge is not None and PartialState().is_main_process:
        answered = [record for record in records if record.get("error") is None]
        verdicts = judge.judge(answered, progress=progress)
        _write_all(os.path.join(output_dir, "verdicts.jsonl"), [verdict_record(verdict) for verdict in verdicts])
        metrics["gpt_judge"] = judge_metrics(verdicts)
        parameters["judge"] = judge.settings
    results = evaluation_results(task, checkpoint, metrics, parameters, per_sample_path=predictions, dataset=dataset)
    if task == "image-qa" or is_image:
        results["hub_task_type"] = "image-text-to-text"
    if PartialState().is_main_process:
        write_results(output_dir, results)
    return results


__all__ = [
    "QA_COLUMNS",
    "VIDEO_EXTENSIONS",
    "VideoQASample",
    "answer_video_questions",
    "evaluate_video_qa",
    "generate_answers",
    "load_evaluation_dataset",
    "media_batch",
    "media_prompt",
    "run_predictions",
    "exact_match_metrics",
    "find_video",
    "normalize_answer",
    "predict_video_qa",
    "read_predictions",
    "read_video_chatgpt",
    "read_video_qa_dataset",
]
