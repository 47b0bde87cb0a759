"""End to end on tiny models: prompts / images / a video -> tokens -> frames -> an .mp4, in Python and on the CLI."""

import json

import av
import pytest
import torch
from PIL import Image
from test_pipeline_video_lavit import HEADS, write_release_folder
from tiny_models import tiny_video_lavit_config
from tiny_tokenizer import build_tiny_llama_tokenizer

from video_lavit import (
    InvalidInputError,
    VideoLaVITForConditionalGeneration,
    VideoLaVITGenerator,
    VideoLaVITVideoProcessor,
    make_sample_video,
)
from video_lavit.cli import main
from video_lavit.conversion.detokenizer import convert_detokenizer
from video_lavit.media_tokenizers.token_layout import VideoLaVITTokenLayout
from video_lavit.processing import VideoLaVITProcessor, add_video_lavit_tokens

SIZE = dict(height=64, width=64, num_inference_steps=1)


def generation_config():
    """A tiny generation checkpoint whose codebooks match the tiny detokenizer's (64 keyframe and motion codes)."""
    return tiny_video_lavit_config(
        "codes",
        image_size=224,
        patch_size=56,
        num_visual_codes=64,
        num_motion_codes=64,
        num_hidden_layers=1,
        text_config_overrides={"max_position_embeddings": 2048},
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = write_release_folder(tmp_path_factory.mktemp("release"))
    detokenizer = tmp_path_factory.mktemp("detokenizer")
    convert_detokenizer(root, detokenizer, **HEADS)
    model_dir = tmp_path_factory.mktemp("generation")
    torch.manual_seed(0)
    VideoLaVITForConditionalGeneration(generation_config()).save_pretrained(model_dir)
    tokenizer = add_video_lavit_tokens(build_tiny_llama_tokenizer(), VideoLaVITTokenLayout(320, 64, 64))
    VideoLaVITProcessor(
        tokenizer=tokenizer, video_processor=VideoLaVITVideoProcessor(encoder_threads=3)
    ).save_pretrained(model_dir)
    return model_dir, detokenizer


@pytest.fixture(scope="module")
def generator(folders):
    generator = VideoLaVITGenerator.from_pretrained(*folders)
    generator.detokenizer.set_progress_bar_config(disable=True)
    return generator


def frame_count(path):
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_text_to_video_two_clips_saved_as_mp4(generator, tmp_path):
    output = generator.text_to_video("a boat on a lake", num_clips=2, seed=0, keyframe_num_inference_steps=2, **SIZE)
    assert len(output.frames[0]) == 48 and len(output.keyframes[0]) == 2
    path = generator.save_video(output.frames[0], tmp_path / "boat.mp4")
    assert frame_count(path) == 48


def test_image_to_video_and_text_to_image(generator):
    image = Image.new("RGB", (96, 64), (30, 120, 200))
    output = generator.image_to_video([image, image], ["the sea", "waves"], seed=0, output_type="np", **SIZE)
    assert output.frames.shape == (2, 24, 64, 64, 3)
    again = generator.image_to_video([image, image], ["the sea", "waves"], seed=0, output_type="np", **SIZE)
    assert (output.frames == again.frames).all(), "a seed reproduces the tokens and the frames"
    images = generator.text_to_image(["a red car", "a cat"], seed=0, height=64, width=64, num_inference_steps=2)
    assert len(images) == 2 and images[0].size == (64, 64)


def test_reconstruct_a_video_from_its_own_tokens(generator, tmp_path):
    video = make_sample_video(tmp_path / "clip.mp4", width=64, height=48, seconds=5.0, fps=24, shift=(2, 1))
    output = generator.reconstruct_video(video, max_clips=1, seed=0, output_type="pt", **SIZE)
    assert output.frames.shape == (1, 24, 3, 64, 64)


def test_understanding_checkpoints_are_refused(folders):
    model_dir, detokenizer = folders
    generator = VideoLaVITGenerator.from_pretrained(model_dir, detokenizer)
    generator.model.config.keyframe_input = "features"
    with pytest.raises(InvalidInputError, match="generation checkpoint"):
        VideoLaVITGenerator(generator.model, generator.processor, generator.detokenizer)


def test_command_line(folders, tmp_path, capsys):
    model_dir, detokenizer = folders
    common = ["--model", str(model_dir), "--detokenizer", str(detokenizer), "--height", "64", "--width", "64"]
    common += ["--steps", "1", "--keyframe-steps", "1", "--seed", "0", "-q"]
    assert main(["generate", "a boat", "-o", str(tmp_path / "t2v.mp4"), *common]) == 0
    assert frame_count(tmp_path / "t2v.mp4") == 24
    image = tmp_path / "first.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(image)
    assert main(["generate", "--image", str(image), "-o", str(tmp_path / "i2v.mp4"), *common]) == 0
    assert frame_count(tmp_path / "i2v.mp4") == 24
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["generate", "--image", str(tmp_path / "bad.png"), "-o", str(tmp_path / "x.mp4"), *common]) == 1
    assert "not a readable image" in capsys.readouterr().err


def test_reconstruction_and_text_to_video_evaluation(generator, folders, tmp_path):
    from video_lavit.evaluation import evaluate_reconstruction, generate_text_to_video_samples

    video = make_sample_video(tmp_path / "clip.mp4", width=64, height=48, seconds=5.0, fps=24, shift=(2, 1))
    results = evaluate_reconstruction(
        generator.model, generator.processor, [video], tmp_path / "reconstruction", detokenizer=generator.detokenizer,
        height=64, width=64, num_inference_steps=1, processor_options={"max_clips": 1}, progress=False,
    )  # fmt: skip
    frames = results["metrics"]["frames"]
    assert frames["clips"] == 1 and 0 < frames["psnr"] < 100 and -1 <= frames["ssim"] <= 1
    assert results["parameters"]["render"] == {"height": 64, "width": 64, "num_inference_steps": 1, "seed": 0}

    samples = generate_text_to_video_samples(generator, ["a boat"], tmp_path / "t2v", seeds=[0, 1],
                                             progress=False, keyframe_num_inference_steps=1, **SIZE)  # fmt: skip
    assert [sample["id"] for sample in samples] == ["00000-seed0", "00000-seed1"]
    assert all(frame_count(sample["video"]) == 24 for sample in samples)
    first = (tmp_path / "t2v" / "videos" / "00000-seed0.mp4").stat().st_mtime_ns
    again = generate_text_to_video_samples(generator, ["a boat"], tmp_path / "t2v", seeds=[0, 1],
                                           progress=False, keyframe_num_inference_steps=1, **SIZE)  # fmt: skip
    assert again == samples and (tmp_path / "t2v" / "videos" / "00000-seed0.mp4").stat().st_mtime_ns == first

    # The command generates from a prompt file and scores what it made (FVD against the same videos: ~0).
    class Features(torch.nn.Module):
        def forward(
            self, videos: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
        ):
            return torch.stack([videos.mean(dim=(1, 2, 3, 4)), videos.std(dim=(1, 2, 3, 4))], dim=1)

    torch.jit.save(torch.jit.script(Features()), str(tmp_path / "i3d.pt"))
    (tmp_path / "prompts.txt").write_text("a boat\n\n")
    model_dir, detokenizer = folders
    assert main(["evaluate", "text-to-video", "--prompts", str(tmp_path / "prompts.txt"), "--model", str(model_dir),
                 "--detokenizer", str(detokenizer), "--height", "64", "--width", "64", "--steps", "1",
                 "--keyframe-steps", "1", "--seeds", "0,1", "--i3d", str(tmp_path / "i3d.pt"), "--real-videos",
                 str(tmp_path / "t2v" / "videos"), "--num-frames", "8", "--resolution", "32", "--output",
                 str(tmp_path / "cli"), "-q"]) == 0  # fmt: skip
    saved = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert saved["metrics"]["fvd"]["generated_videos"] == 2 and abs(saved["metrics"]["fvd"]["score"]) < 1e-6
    assert saved["parameters"]["seeds"] == [0, 1] and saved["parameters"]["prompts_source"].endswith("prompts.txt")


def test_demo_generation_refuses_what_it_cannot_make(folders, tmp_path):
    # (Making videos in the demo is tried in a browser: tests/test_demo.py.)
    from video_lavit.demo import DemoModels

    model_dir, detokenizer = folders
    models = DemoModels(str(model_dir), str(detokenizer), keyframe_num_inference_steps=1, **SIZE)
    assert models.text_to_video("  ", 0, 1) == (None, "Write a prompt.")
    assert models.image_to_video(None, "waves", 0) == (None, "Give a first frame.")
    chat_only = DemoModels(str(model_dir))
    assert chat_only.text_to_video("a boat", 0, 1)[1].startswith("Start the demo with --model")
