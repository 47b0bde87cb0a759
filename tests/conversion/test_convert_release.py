"""`video-lavit convert release` on a miniature release in the reference layout: four loadable parts with model
cards that parse back, a report of every file, a disk-space check, resuming, an incomplete release refused."""

import json
import os
import shutil
import sys

import pytest
from huggingface_hub import ModelCard
from test_convert_language_model import tiny_llama, write_reference_folder

from video_lavit import (
    CheckpointConversionError,
    OutputError,
    VideoLaVITDetokenizerPipeline,
    VideoLaVITForConditionalGeneration,
    VideoLaVITGenerator,
    VideoLaVITKeyframePipeline,
    VideoLaVITProcessor,
)
from video_lavit.cli import main
from video_lavit.conversion.release import convert_release
from video_lavit.evaluation import evaluation_results

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipelines"))
from test_pipeline_video_lavit import write_release_folder  # noqa: E402

HEADS = dict(num_attention_heads=4, motion_attention_heads=2, vision_attention_heads=4, motion_encoder_heads=2)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = write_release_folder(tmp_path_factory.mktemp("Video-LaVIT-v1"))
    llama = tiny_llama()
    write_reference_folder(root / "language_model_sft", llama, embed_tokenizers=True)
    write_reference_folder(root / "language_model", llama, embed_tokenizers=False)
    return root


def test_the_whole_release_in_one_conversion(release, tmp_path, capsys):
    output = tmp_path / "hub"
    report = convert_release(release, output, max_shard_size="100KB", **HEADS)
    assert set(report["parts"]) == {"understanding", "generation", "video_detokenizer", "keyframe"}
    understanding = VideoLaVITForConditionalGeneration.from_pretrained(output / "understanding")
    generation = VideoLaVITForConditionalGeneration.from_pretrained(output / "generation")
    assert (understanding.config.keyframe_input, generation.config.keyframe_input) == ("features", "codes")
    VideoLaVITProcessor.from_pretrained(output / "understanding")
    VideoLaVITDetokenizerPipeline.from_pretrained(output / "video_detokenizer")
    VideoLaVITKeyframePipeline.from_pretrained(output / "keyframe")
    generator = VideoLaVITGenerator.from_pretrained(output)  # the whole text-to-video stack in one call
    assert generator.model.config.keyframe_input == "codes"
    shards = [name for name in os.listdir(output / "generation") if name.endswith(".safetensors")]
    assert len(shards) > 1 and "model.safetensors.index.json" in os.listdir(output / "generation")
    assert not list(output.rglob("*.bin")) and not list(output.glob(".*partial*"))
    written = {item["path"] for part in report["parts"].values() for item in part["files"]}
    assert str(output / "understanding" / "README.md") in written
    assert any(item["path"].endswith("video_3d_unet.bin") for item in report["sources"])

    cards = {part: ModelCard.load(output / part / "README.md") for part in report["parts"]}
    assert cards["understanding"].data.pipeline_tag == "video-text-to-text"
    assert cards["generation"].data.pipeline_tag == "text-to-video"
    assert cards["video_detokenizer"].data.pipeline_tag == "image-to-video"
    assert cards["keyframe"].data.pipeline_tag == "text-to-image"
    for part, card in cards.items():
        assert card.data.license == "llama2" and "arxiv:2402.03161" in card.data.tags, part
    assert cards["understanding"].data.base_model == "meta-llama/Llama-2-7b-hf"
    assert cards["understanding"].data.base_model_relation == "finetune"
    assert "MBZUAI/VideoInstruct-100K" in cards["understanding"].data.datasets
    assert (
        'pipeline("video-text-to-text"' in cards["understanding"].text
        and "transformers==" in cards["understanding"].text
    )
    assert "import torch" in cards["generation"].text and "from_pretrained(" in cards["generation"].text

    # A rerun resumes: the parts done are kept; a part removed from the report is converted again.
    saved = json.loads((output / "conversion_report.json").read_text())
    del saved["parts"]["keyframe"]
    (output / "conversion_report.json").write_text(json.dumps(saved))
    (output / ".keyframe.partial-x").mkdir()  # a killed run's staging folder
    shutil.rmtree(output / "video_detokenizer")  # a part whose folder is gone is converted again
    assert main(["convert", "release", str(release), "--output", str(output), "--num-attention-heads", "4",
                 "--motion-attention-heads", "2", "--vision-attention-heads", "4", "--motion-encoder-heads",
                 "2", "--max-shard-size", "100KB"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "understanding: already converted" in printed and "keyframe: wrote" in printed
    assert "video_detokenizer: wrote" in printed
    # Evaluation results go into a part's card, also when the part was already converted.
    results = evaluation_results("video-qa", "hub/understanding", {"gpt_judge": {"accuracy": 0.732, "score": 3.9}},
                                 {"judge": {"model": "gpt-3.5-turbo"}}, dataset={"name": "MSVD-QA", "type": "msvd",
                                                                                 "split": "test"})  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["convert", "release", str(release), "--output", str(output), "--num-attention-heads", "4",
                 "--motion-attention-heads", "2", "--vision-attention-heads", "4", "--motion-encoder-heads", "2",
                 "--max-shard-size", "100KB", "-q", "--eval-results",
                 f"understanding={tmp_path / 'results.json'}"]) == 0  # fmt: skip
    entries = ModelCard.load(output / "understanding" / "README.md").data.eval_results
    assert {(entry.metric_type, entry.metric_value) for entry in entries} == {("gpt_judge/accuracy", 0.732),
                                                                              ("gpt_judge/score", 3.9)}  # fmt: skip
    assert main(["convert", "release", str(release), "--output", str(output), "--eval-results", "nope=x"]) == 1
    assert not list(output.glob(".*partial*"))
    # The Hub repositories they will be published to: the cards load them, the figures stay, uploads are printed.
    assert f'model="{output / "understanding"}"' in cards["understanding"].text
    capsys.readouterr()
    assert main(["convert", "release", str(release), "--output", str(output), "--num-attention-heads", "4",
                 "--motion-attention-heads", "2", "--vision-attention-heads", "4", "--motion-encoder-heads", "2",
                 "--max-shard-size", "100KB", "-q", "--hub-prefix", "me/Video-LaVIT"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "hf upload me/Video-LaVIT-video-detokenizer " + str(output / "video_detokenizer") in printed
    cards = {part: ModelCard.load(output / part / "README.md") for part in cards}
    assert 'model="me/Video-LaVIT-understanding"' in cards["understanding"].text
    assert (
        'from_pretrained("me/Video-LaVIT-generation", "me/Video-LaVIT-video-detokenizer"' in cards["generation"].text
    )
    assert 'from_pretrained("me/Video-LaVIT-keyframe")' in cards["keyframe"].text
    assert str(output) not in "".join(card.text for card in cards.values())
    assert len(cards["understanding"].data.eval_results) == 2
    saved = json.loads((output / "conversion_report.json").read_text())
    assert saved["parts"]["generation"]["repo_id"] == "me/Video-LaVIT-generation"
    for prefix in ("Video-LaVIT", "me/Video LaVIT", "a/b/c"):
        assert main(["convert", "release", str(release), "--output", str(tmp_path / "other"), "--hub-prefix",
                     prefix]) == 1  # fmt: skip
        assert "not a Hub repository prefix" in capsys.readouterr().err and not (tmp_path / "other").exists()
    # A rerun with other settings converts the parts again.
    report = convert_release(release, output, parts=("keyframe",), progress=False, **HEADS)  # other shard size
    assert report["settings"]["max_shard_size"] == "5GB" and report["parts"]["keyframe"]["status"] == "done"


def test_release_checks(release, tmp_path, monkeypatch, capsys):
    incomplete = tmp_path / "incomplete"
    shutil.copytree(release, incomplete, ignore=shutil.ignore_patterns("language_model"))
    with pytest.raises(CheckpointConversionError, match="language_model missing"):
        convert_release(incomplete, tmp_path / "out", **HEADS)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OutputError, match="GB free"):
        convert_release(release, tmp_path / "out", **HEADS)
    assert not (tmp_path / "out" / "understanding").exists()
    assert main(["convert", "release", str(tmp_path / "none"), "--output", str(tmp_path / "x")]) == 1
    assert "no such folder" in capsys.readouterr().err
