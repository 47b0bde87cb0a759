"""Corpus preparation: every source format, the error report, resuming, and the same output with several processes."""

import csv
import json
import os

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import spread_keep_scores, tiny_video_lavit_config

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITVideoProcessor, make_sample_video
from video_lavit.errors import InvalidInputError, OutputError
from video_lavit.training import (
    MediaTokenizers,
    load_prepared,
    prepare_corpus,
    read_source,
)

PROCESSOR_OPTIONS = {"max_clips": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two short videos (2 clips each with max_clips=2), an image, a broken video and a missing one."""
    folder = tmp_path_factory.mktemp("corpus")
    for index, shift in enumerate([(2, 0), (0, 2)]):
        make_sample_video(
            folder / f"clip{index}.mp4", width=64, height=48, seconds=12.0, fps=12, shift=shift, seed=index
        )
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(400))
    Image.fromarray(np.full((40, 40, 3), (200, 30, 30), dtype=np.uint8)).save(folder / "red.png")
    return folder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes")).eval()
    spread_keep_scores(model.model.visual_tokenizer)
    return model


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return folder


def write_captions_csv(corpus, path):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["video", "caption"])
        writer.writerow(["clip0.mp4", "the texture slides right"])
        writer.writerow(["clip1.mp4", "the texture slides down"])
        writer.writerow(["broken.mp4", "a damaged file"])
        writer.writerow(["missing.mp4", "a file that is not there"])
    return path


def test_read_source_formats(corpus, tmp_path):
    captions = read_source(write_captions_csv(corpus, corpus / "captions.csv"))
    assert captions["media"] == ["video"] * 4
    assert captions["path"][0] == str(corpus / "clip0.mp4")
    assert captions["text"][1] == "the texture slides down"

    webvid = corpus / "webvid.csv"
    webvid.write_text("videoid,name,contentUrl,page_dir\nclip0,a texture,https://example.invalid/clip0.mp4,.\n")
    rows = read_source(webvid)
    assert rows["path"] == [os.path.join(str(corpus), ".", "clip0.mp4")] and rows["text"] == ["a texture"]

    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text(
        json.dumps({"image": str(corpus / "red.png"), "caption": "a red square"})
        + "\n"
        + json.dumps({"text": "plain text, RedPajama style"})
        + "\n"
    )
    rows = read_source(jsonl)
    assert rows["media"] == ["image", "text"]

    llava = tmp_path / "llava.json"
    llava.write_text(
        json.dumps(
            [
                {
                    "id": "v1",
                    "video": str(corpus / "clip0.mp4"),
                    "conversations": [
                        {"from": "human", "value": "<video>\nWhat moves?"},
                        {"from": "gpt", "value": "The texture."},
                    ],
                }
            ]
        )
    )
    rows = read_source(llava)
    assert rows[0]["media"] == "video" and rows[0]["conversations"][1] == {"from": "gpt", "value": "The texture."}

    folder_rows = read_source(corpus)
    assert sorted(folder_rows["id"]) == ["broken", "clip0", "clip1"]

    hub_style = datasets.Dataset.from_dict({"video": [str(corpus / "clip1.mp4")], "caption": ["down"]}).cast_column(
        "video", datasets.Video(decode=False)
    )
    rows = read_source(hub_style)
    assert rows[0]["path"] == str(corpus / "clip1.mp4") and rows[0]["text"] == "down"
    images = datasets.Dataset.from_dict({"image": [str(corpus / "red.png")], "text": ["red"]}).cast_column(
        "image", datasets.Image()
    )
    rows = read_source(images)
    mixed = datasets.Dataset.from_dict(
        {
            "image": [str(corpus / "red.png"), None],
            "conversations": [
                [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "red"}],
                [{"from": "human", "value": "Hello?"}, {"from": "gpt", "value": "Hi."}],
            ],
        }
    ).cast_column("image", datasets.Image())
    assert read_source(mixed)["media"] == ["image", "text"]  # a text-only conversation stays text
    assert rows[0]["media"] == "image" and rows[0]["media_bytes"] is not None or rows[0]["path"]

    with pytest.raises(InvalidInputError, match="no such file"):
        read_source(tmp_path / "nothing.csv")
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    with pytest.raises(InvalidInputError, match="not a corpus"):
        read_source(bad)


def test_prepare_writes_tokens_records_errors_and_resumes(corpus, saved_model, model, tmp_path):
    source = write_captions_csv(corpus, tmp_path / "captions.csv")
    (tmp_path / "clip0.mp4").write_bytes((corpus / "clip0.mp4").read_bytes())
    (tmp_path / "clip1.mp4").write_bytes((corpus / "clip1.mp4").read_bytes())
    (tmp_path / "broken.mp4").write_bytes((corpus / "broken.mp4").read_bytes())
    output = tmp_path / "prepared"
    summary = prepare_corpus(
        source, output, tokenizers=saved_model, shard_size=2, processor_options=PROCESSOR_OPTIONS, progress=False
    )
    assert (summary.samples, summary.prepared, summary.failed, summary.shards) == (4, 2, 2, 2)
    errors = [json.loads(line) for line in open(summary.errors_path)]
    assert {record["id"] for record in errors} == {"2", "3"}
    assert all(record["error_class"] and record["error_message"] for record in errors)
    assert any("missing.mp4" in record["error_message"] for record in errors)
    assert json.load(open(output / "summary.json"))["failed"] == 2

    prepared = load_prepared(output)
    row = prepared[0]
    assert row["keyframe_input"] == "codes" and len(row["motion_codes"]) == 2
    assert all(len(codes) == 135 for codes in row["motion_codes"])
    assert row["clip_start_times"][0] < row["clip_start_times"][1]
    # The codes are the model's own.
    video_processor = VideoLaVITVideoProcessor(size={"height": 32, "width": 32})
    clips = video_processor.iter_clips(str(tmp_path / "clip0.mp4"), max_clips=2)
    pixel_values = torch.stack([pixels for _, pixels in clips])
    expected = model.tokenize_keyframes(pixel_values).split_codes()
    assert [codes.tolist() for codes in expected] == row["keyframe_codes"]

    # A re-run skips the finished shards; a lost shard is redone and gives the same rows.
    os.remove(output / "data" / "shard-00001.parquet")
    again = prepare_corpus(
        source, output, tokenizers=saved_model, shard_size=2, processor_options=PROCESSOR_OPTIONS, progress=False
    )
    assert again.shards_skipped == 1 and again.prepared == 2 and again.failed == 2
    assert load_prepared(output).to_list() == prepared.to_list()
    with pytest.raises(OutputError, match="other settings"):
        prepare_corpus(source, output, tokenizers=saved_model, shard_size=3, progress=False)


def test_two_processes_give_the_same_shards(corpus, model, tmp_path):
    rows = read_source([corpus / "clip0.mp4", corpus / "clip1.mp4", corpus / "broken.mp4"])
    tokenizers = MediaTokenizers.from_model(model)
    one = prepare_corpus(
        rows, tmp_path / "one", media_tokenizers=tokenizers, processor_options=PROCESSOR_OPTIONS, progress=False
    )
    two = prepare_corpus(
        rows,
        tmp_path / "two",
        media_tokenizers=tokenizers,
        num_proc=2,
        batch_size=1,
        processor_options=PROCESSOR_OPTIONS,
        progress=False,
    )
    assert (one.prepared, one.failed) == (two.prepared, two.failed) == (2, 1)
    assert load_prepared(tmp_path / "one").to_list() == load_prepared(tmp_path / "two").to_list()
    # How a run goes (processes, the reader's threads) is not a setting: the two record the same ones.
    assert (tmp_path / "one" / "prepare.json").read_text() == (tmp_path / "two" / "prepare.json").read_text()

    # Tokenizers held in memory key the resume by their weights: other weights are refused, the same resume.
    again = prepare_corpus(
        rows, tmp_path / "one", media_tokenizers=tokenizers, processor_options=PROCESSOR_OPTIONS, progress=False
    )
    assert again.shards_skipped == again.shards
    torch.manual_seed(1)
    other = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes")).eval()
    with pytest.raises(OutputError, match="tokenizers_fingerprint"):
        prepare_corpus(
            rows,
            tmp_path / "one",
            media_tokenizers=MediaTokenizers.from_model(other),
            processor_options=PROCESSOR_OPTIONS,
            progress=False,
        )


def test_conversations_and_images(corpus, model, tmp_path):
    samples = [
        {
            "id": "ok",
            "image": str(corpus / "red.png"),
            "conversations": [
                {"from": "human", "value": "<image>\nWhat colour?"},
                {"from": "gpt", "value": "Red."},
            ],
        },
        {
            "id": "two-placeholders",
            "image": str(corpus / "red.png"),
            "conversations": [
                {"from": "human", "value": "<image>\n<image>\nWhat colour?"},
                {"from": "gpt", "value": "Red."},
            ],
        },
        {
            "id": "no-media",
            "conversations": [{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": "x"}],
        },
    ]
    source = tmp_path / "chat.json"
    source.write_text(json.dumps(samples))
    summary = prepare_corpus(
        source, tmp_path / "out", media_tokenizers=MediaTokenizers.from_model(model), progress=False
    )
    assert (summary.prepared, summary.failed) == (1, 2)
    errors = {record["id"]: record for record in map(json.loads, open(summary.errors_path))}
    assert set(errors) == {"two-placeholders", "no-media"}
    assert "two-placeholders" in errors["two-placeholders"]["error_message"]
    assert errors["no-media"]["error_class"] == "InvalidInputError"
    row = load_prepared(tmp_path / "out")[0]
    assert row["media"] == "image" and len(row["keyframe_codes"]) == 1 and row["motion_codes"] == []


def test_features_checkpoint_and_no_tokenizers(corpus, tmp_path):
    torch.manual_seed(0)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="features")).eval()
    spread_keep_scores(model.model.visual_tokenizer)
    rows = read_source([corpus / "clip0.mp4"])
    prepare_corpus(
        rows,
        tmp_path / "features",
        media_tokenizers=MediaTokenizers.from_model(model),
        progress=False,
        processor_options=PROCESSOR_OPTIONS,
    )
    row = load_prepared(tmp_path / "features")[0]
    assert row["keyframe_input"] == "features" and row["keyframe_codes"] == []
    assert np.asarray(row["keyframe_features"][0]).shape[1] == model.config.text_config.hidden_size

    prepare_corpus(rows, tmp_path / "grids", progress=False, processor_options=PROCESSOR_OPTIONS)
    row = load_prepared(tmp_path / "grids")[0]
    assert row["keyframe_input"] == "none" and np.asarray(row["motion_vectors"]).shape == (2, 2, 24, 20, 36)


def test_prepare_command(corpus, saved_model, tmp_path, capsys):
    from video_lavit.cli import main

    source = write_captions_csv(corpus, corpus / "captions_cli.csv")
    output = tmp_path / "cli"
    arguments = ["prepare", str(source), "--output", str(output), "--tokenizers", str(saved_model), "--max-clips", "2"]
    assert main([*arguments, "-q"]) == 0
    printed = capsys.readouterr()
    assert "2 of 4 samples prepared" in printed.out and "2 failed" in printed.out and "errors.jsonl" in printed.out
    assert "%|" not in printed.err  # quiet: no progress bar
    assert main([*arguments, "-q"]) == 0
    assert "1 of 1 shards were already there (resumed)" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "nothing.csv"), "--output", str(tmp_path / "x")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_videos_are_cut_as_the_model_folder_s_video_processor_says(corpus, model, tmp_path):
    def start_times(video_processor):
        clips = video_processor.iter_clips(str(corpus / "clip0.mp4"), **PROCESSOR_OPTIONS)
        return [float(clip.start_time) for clip, _ in clips]

    saved = VideoLaVITVideoProcessor(size={"height": 32, "width": 32}, fps=4)  # 6 s clips
    default = VideoLaVITVideoProcessor(size={"height": 32, "width": 32})
    assert start_times(saved) != start_times(default)
    for name, video_processor in (("saved", saved), ("bare", None)):
        folder = tmp_path / name
        model.save_pretrained(folder)
        if video_processor is not None:
            video_processor.save_pretrained(folder)
        output = tmp_path / f"{name}-prepared"
        source = [str(corpus / "clip0.mp4")]
        prepare_corpus(source, output, tokenizers=folder, processor_options=PROCESSOR_OPTIONS, progress=False)
        expected = start_times(video_processor or default)
        assert load_prepared(output)[0]["clip_start_times"] == expected


def test_ray_actors_are_capped_to_the_cluster_s_gpus(caplog):
    from video_lavit.training.prepare import _actor_count

    assert _actor_count(8, 0, 0) == 8  # CPU actors: as many as asked
    assert _actor_count(2, 1, 4) == 2
    with caplog.at_level("WARNING"):
        assert _actor_count(8, 1, 2) == 2 and _actor_count(8, 0.5, 2) == 4
    assert "fit on the cluster" in caplog.text
    with pytest.raises(InvalidInputError, match="--num-gpus 0"):
        _actor_count(2, 1, 0)
