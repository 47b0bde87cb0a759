"""Text-to-video metrics: the Frechet distance on known Gaussians, FVD with a tiny TorchScript I3D (FVD(x, x) ~ 0,
FVD(x, shifted x) > 0), CLIPSIM with a tiny CLIPModel folder checked against CLIP's own logits, the command."""

import json

import numpy as np
import pytest
import torch
from tiny_tokenizer import build_tiny_llama_tokenizer
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from video_lavit.cli import main as cli_main
from video_lavit.errors import EvaluationDataError
from video_lavit.evaluation import clip_similarity, evaluate_text_to_video, frechet_distance, load_clip, load_i3d
from video_lavit.evaluation.text_to_video import read_video_frames, save_real_statistics, video_features
from video_lavit.pipelines.generation import VideoLaVITGenerator


class TinyI3D(torch.nn.Module):
    """Stands in for the Kinetics I3D: `[videos, 3, frames, H, W]` in [-1, 1] -> `[videos, 6]` features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 6, kernel_size=3, stride=2)

    def forward(self, videos: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False):
        assert not rescale and not resize and return_features
        return self.conv(videos).mean(dim=(2, 3, 4))


def write_videos(folder, count, brightness, seed):
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        frames = (generator.random((10, 32, 32, 3)) * 80 + brightness).clip(0, 255).astype(np.uint8)
        paths.append(VideoLaVITGenerator.save_video([frame / 255.0 for frame in frames], folder / f"v{index}.mp4"))
    return paths


def test_frechet_distance_on_known_gaussians():
    rng = np.random.default_rng(0)
    sigma = np.cov(rng.normal(size=(50, 4)), rowvar=False)
    mu = rng.normal(size=4)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    shift = np.array([1.0, 2.0, 0.0, 0.0])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(5.0, abs=1e-6)  # |shift|^2
    # Isotropic covariances: tr(s1 + s2 - 2 sqrt(s1 s2)) = dim (sqrt(a) - sqrt(b))^2.
    assert frechet_distance(mu, 4 * np.eye(4), mu, np.eye(4)) == pytest.approx(4.0, abs=1e-6)


def test_fvd_with_a_torchscript_i3d(tmp_path, capsys):
    torch.jit.save(torch.jit.script(TinyI3D()), str(tmp_path / "i3d.pt"))
    i3d = load_i3d(tmp_path / "i3d.pt")
    real = write_videos(tmp_path / "real", 6, brightness=60, seed=1)
    copy = write_videos(tmp_path / "copy", 6, brightness=60, seed=1)
    shifted = write_videos(tmp_path / "shifted", 6, brightness=160, seed=2)
    frames = [read_video_frames(path, 8, stride=1, resolution=32)[0] for path in real]
    assert frames[0].shape == (8, 32, 32, 3)
    padded = read_video_frames(real[0], 16, stride=1)
    assert padded[1] and (padded[0][-1] == padded[0][9]).all()  # 10 frames, the last repeated

    def fvd(generated, **kwargs):
        samples = [{"prompt": "noise", "video": path} for path in generated]
        results = evaluate_text_to_video(samples, tmp_path / "out", i3d=i3d, num_frames=8, resolution=32,
                                         progress=False, **kwargs)  # fmt: skip
        return results

    same = fvd(copy, real_videos=real)["metrics"]["fvd"]
    assert abs(same["score"]) < 1e-6 and same["generated_videos"] == 6 and same["real_videos"] == 6
    far = fvd(shifted, real_videos=real)
    assert far["metrics"]["fvd"]["score"] > 1e-3
    assert far["parameters"]["fvd"] == {"num_frames": 8, "stride": 1, "resolution": 32, "real": "6 real videos",
                                        "extractor_kwargs": {"rescale": False, "resize": False,
                                                             "return_features": True}}  # fmt: skip
    # Saved real statistics give the same distance.
    real_features = video_features(frames, i3d)
    save_real_statistics(real_features, tmp_path / "real.npz")
    assert fvd(shifted, real_statistics=tmp_path / "real.npz")["metrics"]["fvd"]["score"] == pytest.approx(
        far["metrics"]["fvd"]["score"], rel=1e-9
    )
    # A broken video is recorded and the rest scored.
    (tmp_path / "broken.mp4").write_bytes(b"nothing")
    broken = fvd([*copy, str(tmp_path / "broken.mp4")], real_videos=real)
    assert broken["metrics"]["videos"] == {"scored": 6, "errors": 1}
    with pytest.raises(EvaluationDataError, match="no such I3D"):
        load_i3d(tmp_path / "missing.pt")

    with open(tmp_path / "samples.jsonl", "w") as file:
        file.writelines(json.dumps({"prompt": "noise", "video": f"shifted/v{index}.mp4"}) + "\n" for index in range(6))
    arguments = ["evaluate", "text-to-video", "--samples", str(tmp_path / "samples.jsonl"), "--i3d",
                 str(tmp_path / "i3d.pt"), "--num-frames", "8", "--resolution", "32", "--output",
                 str(tmp_path / "cli"), "-q"]  # fmt: skip
    assert cli_main([*arguments, "--real-videos", str(tmp_path / "real")]) == 0
    assert json.loads((tmp_path / "cli" / "results.json").read_text())["metrics"]["fvd"]["score"] == pytest.approx(
        far["metrics"]["fvd"]["score"], rel=1e-9
    )
    assert cli_main(arguments) == 1 and "FVD needs the real side" in capsys.readouterr().err


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 320, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "eos_token_id": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(folder)
    tokenizer = build_tiny_llama_tokenizer()
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_clipsim_matches_clip_logits(clip_folder, tmp_path):
    clip = load_clip(clip_folder)
    model, tokenizer, image_processor = clip
    [path] = write_videos(tmp_path / "videos", 1, brightness=100, seed=3)
    frames, _ = read_video_frames(path, 10)
    score = clip_similarity(frames, "a red car on the road", clip)
    inputs = tokenizer(["a red car on the road"], return_tensors="pt")
    pixels = image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        output = model(input_ids=inputs["input_ids"], pixel_values=pixels)
    expected = (output.logits_per_image[:, 0] / model.logit_scale.exp()).mean().item()
    assert score == pytest.approx(expected, abs=1e-5) and -1 <= score <= 1

    samples = [{"prompt": "a red car on the road", "video": path}, {"prompt": "a dog", "video": path}]
    results = evaluate_text_to_video(samples, tmp_path / "out", clip=clip, clip_frames=4, progress=False)
    assert results["metrics"]["clipsim"]["videos"] == 2 and results["parameters"]["clipsim"]["frames"] == 4
    assert results["hub_task_type"] == "text-to-video" and results["metrics"].get("fvd") is None
    with pytest.raises(EvaluationDataError, match="not a CLIPModel folder"):
        load_clip(tmp_path / "nothing")
