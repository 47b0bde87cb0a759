"""Open-ended video QA end to end with the built-in world model: both layouts, batched and resumable predictions,
per-sample errors, exact match, the GPT judge on a loopback server, the results JSON and its model card entries."""

import dataclasses
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import datasets
import pytest
from huggingface_hub import ModelCard, ModelCardData

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.cli import main as cli_main
from video_lavit.errors import EvaluationDataError, InvalidInputError
from video_lavit.evaluation import (
    card_eval_results,
    exact_match_metrics,
    normalize_answer,
    predict_video_qa,
    read_video_chatgpt,
    read_video_qa_dataset,
)
from video_lavit.training.world import world_dataset
from video_lavit.world_model import world_model_path


@pytest.fixture(scope="module")
def world_model():
    path = world_model_path()
    return VideoLaVITForConditionalGeneration.from_pretrained(path).eval(), VideoLaVITProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def qa_set(tmp_path_factory):
    """Video-ChatGPT's layout: 3 world videos named without extension, 6 questions, one about a missing video and
    one without an answer."""
    root = tmp_path_factory.mktemp("qa")
    rows = world_dataset(3, root / "source", seed=7, split="qa")
    (root / "videos").mkdir()
    questions, answers = [], []
    for index, row in enumerate(rows):
        shutil.copy(row["video"], root / "videos" / f"video{index}.mp4")
        for kind, question in (
            ("colour", "What colour is the shape?"),
            ("direction", "Which way does the shape move?"),
        ):
            questions.append(
                {"video_name": f"video{index}", "question": question, "question_id": f"q{len(questions)}"}
            )
            answers.append({"answer": row[kind], "question_id": f"q{len(answers)}"})
    questions.append({"video_name": "gone", "question": "What colour is the shape?", "question_id": "q-missing"})
    answers.append({"answer": "red", "question_id": "q-missing"})
    questions.append({"video_name": "video0", "question": "What shape is it?", "question_id": "q-no-answer"})
    answers.append({"answer": "", "question_id": "q-no-answer"})
    (root / "test_q.json").write_text(json.dumps(questions))
    (root / "test_a.json").write_text(json.dumps(answers))
    return root


def test_read_predict_resume_and_score(world_model, qa_set, tmp_path):
    model, processor = world_model
    samples = read_video_chatgpt(qa_set / "test_q.json", qa_set / "test_a.json", qa_set / "videos")
    assert [sample.id for sample in samples][-2:] == ["q-missing", "q-no-answer"]
    assert samples[0].video.endswith("video0.mp4") and samples[0].error is None
    assert "not found" in samples[-2].error and samples[-1].error == "no reference answer"

    calls = []
    generate = model.generate

    def counting_generate(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    model.generate = counting_generate
    try:
        path = tmp_path / "predictions.jsonl"
        records = predict_video_qa(model, processor, samples, path, batch_size=4, max_new_tokens=4, progress=False)
        assert calls == [4, 2]  # batched: 6 answerable questions
        assert [record["id"] for record in records] == [sample.id for sample in samples]
        assert all(isinstance(record["pred"], str) for record in records[:6])
        assert records[-1]["pred"] is None and records[-1]["error"] == "no reference answer"
        metrics = exact_match_metrics(records)
        assert (metrics["answered"], metrics["errors"]) == (6, 2) and metrics["correct"] >= 4

        # Interrupted after 3 lines (the third cut in half): the rerun answers only what is missing.
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])
        kept = [json.loads(line) for line in lines[:2]]
        calls.clear()
        again = predict_video_qa(model, processor, samples, path, batch_size=4, max_new_tokens=4, progress=False)
        assert sum(calls) == 6 - sum(record.get("error") is None for record in kept)
        assert again == records
        calls.clear()
        assert predict_video_qa(model, processor, samples, path, max_new_tokens=4, progress=False) == records
        assert not calls

        # Other settings do not resume these predictions; a video that was missing is answered once it is there.
        with pytest.raises(InvalidInputError, match="max_new_tokens differ"):
            predict_video_qa(model, processor, samples, path, max_new_tokens=8, progress=False)
        shutil.copy(qa_set / "videos" / "video0.mp4", tmp_path / "gone.mp4")
        found = [dataclasses.replace(s, video=str(tmp_path / "gone.mp4"), error=None) if s.id == "q-missing" else s
                 for s in samples]  # fmt: skip
        calls.clear()
        final = predict_video_qa(model, processor, found, path, max_new_tokens=4, progress=False)
        assert calls == [1] and isinstance(final[-2]["pred"], str) and "error" not in final[-2]
    finally:
        model.generate = generate


def test_layouts_and_bad_sets(qa_set, tmp_path, monkeypatch):
    samples = read_video_chatgpt(qa_set / "test_q.json", qa_set / "test_a.json", qa_set / "videos")
    rows = [
        {"video_name": s.video_name, "question_id": s.id, "question": s.question, "answer": s.answer} for s in samples
    ]
    table = datasets.Dataset.from_list(rows)
    # A datasets object, a save_to_disk folder, a Parquet file, and a Hub cache layout read offline.
    table.save_to_disk(tmp_path / "saved")
    table.to_parquet(tmp_path / "test.parquet")
    snapshot = tmp_path / "hub" / "datasets--lmms-eval--TinyQA" / "snapshots" / "0123abcd"
    (snapshot / "data").mkdir(parents=True)
    table.to_parquet(snapshot / "data" / "test-00000-of-00001.parquet")
    (tmp_path / "hub" / "datasets--lmms-eval--TinyQA" / "refs").mkdir()
    (tmp_path / "hub" / "datasets--lmms-eval--TinyQA" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    for source in (table, datasets.DatasetDict({"test": table}), tmp_path / "saved", tmp_path / "test.parquet",
                   "lmms-eval/TinyQA"):  # fmt: skip
        assert read_video_qa_dataset(source, qa_set / "videos") == samples, source
    with pytest.raises(EvaluationDataError, match="hf download --repo-type dataset lmms-eval/Missing"):
        read_video_qa_dataset("lmms-eval/Missing", qa_set / "videos")
    with pytest.raises(EvaluationDataError, match="no split 'val'"):
        read_video_qa_dataset(datasets.DatasetDict({"test": table}), qa_set / "videos", split="val")
    with pytest.raises(EvaluationDataError, match="lacks the column"):
        read_video_qa_dataset(table.remove_columns("answer"), qa_set / "videos")

    questions = json.loads((qa_set / "test_q.json").read_text())
    answers = json.loads((qa_set / "test_a.json").read_text())
    (tmp_path / "short_a.json").write_text(json.dumps(answers[:-1]))
    with pytest.raises(EvaluationDataError, match="8 questions but .* 7 answers"):
        read_video_chatgpt(qa_set / "test_q.json", tmp_path / "short_a.json", qa_set / "videos")
    (tmp_path / "swapped_a.json").write_text(json.dumps([answers[1], answers[0], *answers[2:]]))
    with pytest.raises(EvaluationDataError, match="entry 0: question_id 'q0'"):
        read_video_chatgpt(qa_set / "test_q.json", tmp_path / "swapped_a.json", qa_set / "videos")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(EvaluationDataError, match="not a JSON file"):
        read_video_chatgpt(tmp_path / "broken.json", qa_set / "test_a.json", qa_set / "videos")
    with pytest.raises(EvaluationDataError, match="no such questions file"):
        read_video_chatgpt(tmp_path / "none.json", qa_set / "test_a.json", qa_set / "videos")
    assert len(questions) == 8
    assert normalize_answer("The Red square.") == "red square"


class ExactJudge(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["messages"][1]["content"]
        answer = prompt.split("Correct Answer: ")[1].split("\n")[0]
        prediction = prompt.split("Predicted Answer: ")[1].split("\n")[0]
        verdict = "{'pred': 'yes', 'score': 5}" if answer == prediction else "{'pred': 'no', 'score': 0}"
        data = json.dumps({"choices": [{"message": {"content": verdict}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_evaluate_command_with_the_judge_and_the_model_card(qa_set, tmp_path, capsys):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ExactJudge)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        output = tmp_path / "run"
        arguments = ["evaluate", "video-qa", "--questions", str(qa_set / "test_q.json"), "--answers",
                     str(qa_set / "test_a.json"), "--video-dir", str(qa_set / "videos"), "--output", str(output),
                     "--name", "TinyQA", "--judge-url", f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                     "--judge-model", "judge-x", "-q"]  # fmt: skip
        assert cli_main(arguments) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    results = json.loads((output / "results.json").read_text())
    exact, judged = results["metrics"]["exact_match"], results["metrics"]["gpt_judge"]
    assert judged["judged"] == exact["answered"] == 6 and judged["yes"] == exact["correct"]
    assert results["parameters"]["judge"]["model"] == "judge-x" and results["versions"]["torch"]
    assert results["dataset"]["name"] == "TinyQA" and os.path.exists(results["per_sample_path"])
    assert len((output / "verdicts.jsonl").read_text().splitlines()) == 6
    assert "gpt_judge: accuracy" in capsys.readouterr().out

    entries = card_eval_results(results)
    card = ModelCard.from_template(ModelCardData(model_name="tiny", eval_results=entries, license="llama2"))
    parsed = ModelCard(str(card)).data.eval_results
    assert {(entry.metric_type, round(entry.metric_value, 6)) for entry in parsed} == {
        ("exact_match/accuracy", round(exact["accuracy"], 6)),
        ("gpt_judge/accuracy", round(judged["accuracy"], 6)),
        ("gpt_judge/score", round(judged["score"], 6)),
    }

    assert cli_main(["evaluate", "video-qa", "--video-dir", str(qa_set), "--output", str(tmp_path / "x")]) == 1
    assert "give --questions and --answers" in capsys.readouterr().err
    # A judge that is down: predictions and exact match are kept, the failures are counted, the exit status says so.
    assert cli_main([*arguments[:-5], "--judge-url", "http://127.0.0.1:9/v1", "--judge-retries", "0", "-q"]) == 1
    assert "judge calls failed" in capsys.readouterr().err
