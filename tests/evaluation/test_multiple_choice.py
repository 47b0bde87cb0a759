"""Multiple-choice and image QA: every benchmark layout and its prompt, letter extraction, both answering methods
with the built-in world model (per-category accuracy, resume), image questions through the same path, the CLI."""

import json
import random

import av
import datasets
import pytest
from PIL import Image

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.cli import main as cli_main
from video_lavit.errors import EvaluationDataError
from video_lavit.evaluation import (
    evaluate_image_qa,
    evaluate_multiple_choice,
    extract_choice,
    read_image_qa_dataset,
    read_multiple_choice_dataset,
)
from video_lavit.evaluation.multiple_choice import format_prompt
from video_lavit.training.world import world_dataset, world_questions
from video_lavit.world_model import world_model_path


@pytest.fixture(scope="module")
def world_model():
    path = world_model_path()
    return VideoLaVITForConditionalGeneration.from_pretrained(path).eval(), VideoLaVITProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def world_set(tmp_path_factory):
    """6 world videos, a colour and a direction question each (options shuffled), and one missing video."""
    root = tmp_path_factory.mktemp("mc")
    rows = world_dataset(6, root / "videos", seed=3, split="mc")
    data = []
    for index, row in enumerate(rows):
        for kind in ("colour", "direction"):
            question = world_questions()[kind]
            options = list(question.options)
            random.Random(index).shuffle(options)
            data.append({"question_id": f"{index}-{kind}", "video": row["video"].split("/")[-1],
                         "question": question.question, "options": options, "answer": row[kind],
                         "category": kind})  # fmt: skip
    data.append({"question_id": "gone", "video": "gone.mp4", "question": "What colour is the shape?",
                 "options": ["red", "blue"], "answer": 1, "category": "colour"})  # fmt: skip
    with open(root / "questions.jsonl", "w") as file:
        file.writelines(json.dumps(row) + "\n" for row in data)
    return root, rows


def test_extract_choice():
    options = ["red", "green", "blue", "dark red"]
    assert extract_choice("B", options) == "B"
    assert extract_choice("(C) blue", options) == "C"
    assert extract_choice("The best answer is: D.", options) == "D"
    assert extract_choice("The answer is A", options) == "A"
    assert extract_choice("green", options) == "B"
    assert extract_choice("it is dark red", options) == "D"  # the longest option at the first place
    assert extract_choice("a shape that moves", options) is None  # lower-case "a" is not a letter
    assert extract_choice("E", options) is None  # not one of the four letters
    assert extract_choice("I do not know", options) is None


def test_benchmark_layouts_and_prompts(tmp_path):
    (tmp_path / "clevrer" / "video_validation").mkdir(parents=True)
    for path in (tmp_path / "v1.mp4", tmp_path / "clevrer" / "video_validation" / "c1.mp4", tmp_path / "42.mp4"):
        path.write_bytes(b"")
    videomme = datasets.Dataset.from_list([{
        "videoID": "v1", "question_id": "001-1", "question": "What is shown?", "options": ["A. a cat", "B. a dog",
        "C. a bird", "D. a fish"], "answer": "B", "duration": "short", "domain": "Knowledge",
        "sub_category": "Humanity & History", "task_type": "Counting Problem",
    }])  # fmt: skip
    [sample] = read_multiple_choice_dataset(videomme, "videomme", tmp_path)
    assert sample.options == ("a cat", "a dog", "a bird", "a fish") and sample.answer == "B"
    assert sample.video.endswith("v1.mp4") and sample.categories["task_type"] == "Counting Problem"
    assert format_prompt(sample) == (
        "Select the best answer to the following multiple-choice question based on the video. Respond with only "
        "the letter (A, B, C, or D) of the correct option.\nWhat is shown?\nA. a cat\nB. a dog\nC. a bird\n"
        "D. a fish\nThe best answer is:"
    )
    mvbench = datasets.DatasetDict({"train": datasets.Dataset.from_list([
        {"video": "c1.mp4", "question": "Which way?", "candidates": ["left", "right"], "answer": "right"},
    ])})  # fmt: skip
    [sample] = read_multiple_choice_dataset(mvbench, "mvbench", tmp_path, name="moving_direction")
    assert sample.video.endswith("clevrer/video_validation/c1.mp4") and sample.answer == "B"
    assert sample.categories == {"subtask": "moving_direction"} and sample.id == "moving_direction-0"
    assert format_prompt(sample) == (
        "Question:Which way?\nOption:\n(A) left\n(B) right\nAnswer with the option's letter from the given "
        "choices directly."
    )
    egoschema = datasets.Dataset.from_list([{"question_idx": "q1", "video_idx": "42", "question": "What did c do?",
                                             "option": ["A. cook", "B. read", "C. run"], "answer": "2"}])  # fmt: skip
    [sample] = read_multiple_choice_dataset(egoschema, "egoschema", tmp_path)
    assert sample.answer == "C" and sample.options == ("cook", "read", "run")
    assert format_prompt(sample) == (
        "What did c do?\nA. cook\nB. read\nC. run\nAnswer with the option's letter from the given choices directly."
    )
    nextqa = datasets.Dataset.from_list([{"video": 42, "qid": 3, "question": "why ", "a0": "x", "a1": "y", "a2": "z",
                                          "a3": "w", "a4": "v", "answer": 4, "type": "CW"}])  # fmt: skip
    [sample] = read_multiple_choice_dataset(nextqa, "nextqa", tmp_path)
    assert (sample.id, sample.answer, sample.categories) == ("42-3", "E", {"type": "CW"})
    image = Image.new("RGB", (32, 32), (200, 10, 10))
    mmbench = datasets.DatasetDict({"dev": datasets.Dataset.from_list([
        {"index": 7, "question": "Colour?", "hint": "Look at the square.", "A": "red", "B": "blue", "C": None,
         "D": None, "answer": "A", "category": "attribute", "l2-category": "perception", "image": image},
    ])})  # fmt: skip
    [sample] = read_multiple_choice_dataset(mmbench, "mmbench")
    assert sample.options == ("red", "blue") and sample.image is not None and sample.video is None
    assert format_prompt(sample).startswith("Look at the square.\nColour?\nA. red\nB. blue\n")

    counts = datasets.DatasetDict({"train": datasets.Dataset.from_list([
        {"video": "c1.mp4", "question": "How many?", "candidates": ["3", "2", "4"], "answer": "2"},
    ])})  # fmt: skip
    [sample] = read_multiple_choice_dataset(counts, "mvbench", tmp_path, name="moving_count")
    assert sample.answer == "B"  # MVBench answers are the option's text, even when it is a number
    with pytest.raises(EvaluationDataError, match="answer 'purple' is not one of its 2 options"):
        read_multiple_choice_dataset(mvbench.map(lambda row: {"answer": "purple"}), "mvbench", tmp_path)
    with pytest.raises(EvaluationDataError, match="lacks the column"):
        read_multiple_choice_dataset(videomme.remove_columns("options"), "videomme", tmp_path)
    [missing] = read_multiple_choice_dataset(videomme.map(lambda row: {"videoID": "nope"}), "videomme", tmp_path)
    assert "not found" in missing.error


def test_world_multiple_choice_both_methods(world_model, world_set, tmp_path):
    model, processor = world_model
    root, _ = world_set
    samples = read_multiple_choice_dataset(root / "questions.jsonl", "generic", root / "videos")
    assert samples[-1].error and samples[0].error is None and samples[-1].answer == "B"  # generic: an index
    for method in ("loglik", "generate"):
        results = evaluate_multiple_choice(model, processor, samples, tmp_path / method, method=method,
                                           prompt_format="question_only", progress=False)  # fmt: skip
        overall, per_category = results["metrics"]["multiple_choice"], results["metrics"]["per_category"]
        assert (overall["answered"], overall["errors"]) == (12, 1)
        assert per_category["category"]["colour"]["errors"] == 1  # the missing video is counted in its category
        # The world model answers these (1.0 on this set): option ranking and letter reading both find it.
        for kind in ("colour", "direction"):
            assert per_category["category"][kind]["accuracy"] >= 0.8, (method, per_category)
        lines = (tmp_path / method / "predictions.jsonl").read_text().splitlines()
        by_id = {record["id"]: record for record in map(json.loads, lines)}
        records = [by_id[sample.id] for sample in samples]
        assert overall["unparsed"] == sum(r.get("choice") is None for r in records if "error" not in r)
        if method == "loglik":
            assert all(len(r["option_loglik"]) == 4 and r["choice"] for r in records[:12])
            assert all(r["pred"] == dict(zip("ABCD", s.options))[r["choice"]] for r, s in zip(records[:12], samples))
        assert json.loads((tmp_path / method / "results.json").read_text())["parameters"]["method"] == method

    # A rerun resumes: nothing is answered again.
    calls = []
    generate = model.generate
    model.generate = lambda **kwargs: calls.append(1) or generate(**kwargs)
    try:
        evaluate_multiple_choice(model, processor, samples, tmp_path / "generate", method="generate",
                                 prompt_format="question_only", progress=False)  # fmt: skip
    finally:
        model.generate = generate
    assert not calls


def keyframe_png(video: str, path) -> None:
    with av.open(video) as container:
        next(container.decode(video=0)).to_image().save(path)


def test_image_questions_through_the_same_path(world_model, world_set, tmp_path):
    model, processor = world_model
    _, rows = world_set
    (tmp_path / "images").mkdir()
    data = []
    for index, row in enumerate(list(rows)[:3]):
        keyframe_png(row["video"], tmp_path / "images" / f"img{index}.png")
        data.append({"questionId": f"q{index}", "imageId": f"img{index}", "question": "What colour is the shape?",
                     "answer": row["colour"]})  # fmt: skip
    data.append({"questionId": "q-missing", "imageId": "none", "question": "What colour?", "answer": "red"})
    samples = read_image_qa_dataset(datasets.Dataset.from_list(data), tmp_path / "images")
    assert samples[0].image.endswith("img0.png") and "not found" in samples[-1].error
    results = evaluate_image_qa(model, processor, samples, tmp_path / "out", batch_size=2, max_new_tokens=4,
                                progress=False)  # fmt: skip
    assert results["task"] == "image-qa" and results["hub_task_type"] == "image-text-to-text"
    assert results["parameters"]["prompt"].startswith("<image>\n{question}\nAnswer the question using a single")
    metrics = results["metrics"]["exact_match"]
    assert (metrics["answered"], metrics["errors"]) == (3, 1)
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(record["id"] for record in records if isinstance(record["pred"], str)) == ["q0", "q1", "q2"]

    # Images inside the rows (datasets' Image feature), multiple choice (MMBench layout), on the command line.
    images = [Image.open(tmp_path / "images" / f"img{index}.png").convert("RGB") for index in range(3)]
    mmbench = datasets.Dataset.from_list([
        {"index": index, "question": "What colour is the shape?", "hint": None, "A": "red", "B": "green",
         "C": "blue", "D": "yellow", "answer": "ABCD"[["red", "green", "blue", "yellow"].index(row["colour"])],
         "category": "colour", "image": image}
        for index, (row, image) in enumerate(zip(rows, images))
    ])  # fmt: skip
    mmbench.save_to_disk(tmp_path / "mmbench")
    assert cli_main(["evaluate", "multiple-choice", "--benchmark", "mmbench", "--dataset", str(tmp_path / "mmbench"),
                     "--output", str(tmp_path / "mc"), "--method", "loglik", "-q"]) == 0  # fmt: skip
    saved = json.loads((tmp_path / "mc" / "results.json").read_text())
    assert saved["metrics"]["multiple_choice"]["answered"] == 3 and saved["hub_task_type"] == "image-text-to-text"
    assert saved["metrics"]["per_category"]["category"]["colour"]["answered"] == 3
    assert saved["dataset"]["split"] == "dev" and saved["parameters"]["media_placeholder"] == "<image>"


def test_multiple_choice_command(world_set, tmp_path, capsys):
    root, _ = world_set
    arguments = ["evaluate", "multiple-choice", "--benchmark", "generic", "--dataset", str(root / "questions.jsonl"),
                 "--video-dir", str(root / "videos"), "--output", str(tmp_path / "out"), "--limit", "4",
                 "-q"]  # fmt: skip
    assert cli_main([*arguments, "--prompt-format", "question_only"]) == 0
    printed = capsys.readouterr().out
    assert "multiple_choice: accuracy" in printed and "per_category category=colour: accuracy" in printed
    assert cli_main([*arguments, "--method", "loglik"]) == 1  # other settings than the saved predictions
    assert "other settings" in capsys.readouterr().err
    assert cli_main(["evaluate", "multiple-choice", "--benchmark", "generic", "--dataset", str(tmp_path / "no"),
                     "--video-dir", str(root / "videos"), "--output", str(tmp_path / "x"), "-q"]) == 1  # fmt: skip
    assert "no: no such file or folder" in capsys.readouterr().err
