"""Text-to-video: CLIPSIM and FVD of generated videos, with every setting that varies between papers recorded.

- `generate_text_to_video_samples` makes one video per (prompt, seed) with a [`VideoLaVITGenerator`] and writes
  them as `.mp4` files with `samples.jsonl` (`id, prompt, seed, video`) as it goes: a rerun makes only the missing
  ones. Or bring your own videos: a `samples.jsonl` / JSON list of `{prompt, video}` rows.
- **CLIPSIM** (`clip_similarity`): for each video, the mean over its sampled frames of the cosine similarity of the
  frame's CLIP image embedding with the prompt's CLIP text embedding, averaged over the videos (the published
  0.3012 on MSR-VTT is on this scale, not x100). The CLIP is a transformers `CLIPModel` folder you give, with its
  tokenizer and image processor; embeddings are the projected `pooler_output`s of `get_text_features` /
  `get_image_features` (torchmetrics' `CLIPScore` breaks on transformers 5).
- **FVD** (`frechet_video_distance`): the Frechet distance between Gaussians fitted to I3D features of the
  generated and of the real videos. The I3D is a TorchScript file you give (e.g. the Kinetics-400 I3D that
  StyleGAN-V and most FVD code load: input `[videos, 3, frames, 224, 224]` in [-1, 1], called with
  `rescale=False, resize=False, return_features=True`); any callable taking that tensor and returning
  `[videos, features]` can stand in. The matrix square root is scipy's `sqrtm`. Real statistics come from a folder
  of real videos (clipped the same way) or a saved `.npz` of `mu`, `sigma` (with its source recorded).

Frames are read with PyAV: `num_frames` frames every `stride`-th frame from the start, resized to `resolution`
(shorter videos repeat their last frame, recorded as `padded_videos`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import EvaluationDataError, InvalidInputError, VideoLaVITError
from .results import evaluation_results, write_results
from .video_qa import _append, _check_settings, _drop_torn_tail, read_predictions

I3D_KWARGS = {"rescale": False, "resize": False, "return_features": True}


def read_video_frames(path: str, num_frames: int, stride: int = 1, resolution: int | None = None) -> tuple:
    """`(frames uint8 [num_frames, H, W, 3], padded)`: every `stride`-th frame from the first, resized to
    `resolution` x `resolution` when given; a shorter video repeats its last frame (`padded` is then True)."""
    import av
    from PIL import Image

    if num_frames < 1 or stride < 1:
        raise InvalidInputError("num_frames and stride must be positive.")
    frames = []
    try:
        with av.open(os.fspath(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % stride:
                    continue
                image = frame.to_image().convert("RGB")
                if resolution:
                    image = image.resize((resolution, resolution), Image.BICUBIC)
                frames.append(np.asarray(image))
                if len(frames) == num_frames:
                    break
    except (av.FFmpegError, OSError) as error:
        raise EvaluationDataError(f"{path}: cannot be decoded ({error}).") from error
    if not frames:
        raise EvaluationDataError(f"{path}: no frame decodes.")
    padded = len(frames) < num_frames
    frames += [frames[-1]] * (num_frames - len(frames))
    return np.stack(frames), padded


def read_samples(path: str | os.PathLike) -> list[dict]:
    """`{prompt, video}` rows from a JSON-lines or JSON list file; relative video paths are taken from its folder."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise EvaluationDataError(f"{path}: cannot be read ({error}).") from error
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                         if line.strip()]  # fmt: skip
    except json.JSONDecodeError as error:
        raise EvaluationDataError(f"{path}: not JSON lines or a JSON list ({error}).") from error
    folder = os.path.dirname(os.path.abspath(path))
    samples = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row.get("video"):
            raise EvaluationDataError(f"{path}: row {index} needs a `prompt` and a `video`.")
        video = row["video"] if os.path.isabs(row["video"]) else os.path.join(folder, row["video"])
        samples.append({**row, "video": video})
    return samples


def load_clip(folder: str | os.PathLike, device: str | torch.device = "cpu"):
    """`(model, tokenizer, image_processor)` of a transformers `CLIPModel` folder (nothing is downloaded)."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EvaluationDataError(f"{folder}: not a CLIPModel folder (save one with `save_pretrained`).")
    try:
        model = CLIPModel.from_pretrained(folder).to(device).eval()
        return model, AutoTokenizer.from_pretrained(folder), AutoImageProcessor.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise EvaluationDataError(f"{folder}: cannot load a CLIPModel with its tokenizer and image processor "
                                  f"({error}).") from error  # fmt: skip


@torch.no_grad()
def clip_similarity(frames: np.ndarray, prompt: str, clip) -> float:
    """CLIPSIM of one video: mean over `frames` (uint8 `[frames, H, W, 3]`) of the cosine similarity of each frame's
    image embedding with `prompt`'s text embedding. `clip` is `load_clip`'s triple."""
    model, tokenizer, image_processor = clip
    device = model.device
    max_length = model.config.text_config.max_position_embeddings
    text = tokenizer([prompt], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    text_embedding = model.get_text_features(**text.to(device)).pooler_output
    images = image_processor(images=list(frames), return_tensors="pt")["pixel_values"].to(device)
    image_embedding = model.get_image_features(pixel_values=images).pooler_output
    similarity = torch.nn.functional.cosine_similarity(image_embedding.float(), text_embedding.float(), dim=-1)
    return float(similarity.mean())


def load_i3d(path: str | os.PathLike, device: str | torch.device = "cpu") -> Callable:
    """The I3D feature extractor of a TorchScript file, called with `I3D_KWARGS`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EvaluationDataError(f"{path}: no such I3D TorchScript file.")
    try:
        detector = torch.jit.load(path, map_location=device).eval()
    except RuntimeError as error:
        raise EvaluationDataError(f"{path}: not a TorchScript file ({error}).") from error

    def extract(videos: torch.Tensor) -> torch.Tensor:
        return detector(videos.to(device), **I3D_KWARGS)

    return extract


@torch.no_grad()
def video_features(
    videos: Sequence[np.ndarray], extractor: Callable, batch_size: int = 8, progress: bool = False
) -> np.ndarray:
    """Features `[videos, dim]` (float64) of uint8 `[frames, H, W, 3]` videos: each batch goes to `extractor` as
    `[batch, 3, frames, H, W]` in [-1, 1]."""
    features = []
    for start in tqdm(range(0, len(videos), batch_size), desc="features", disable=not progress):
        batch = torch.from_numpy(np.stack(videos[start : start + batch_size])).float()
        batch = batch.permute(0, 4, 1, 2, 3) / 127.5 - 1
        output = extractor(batch)
        features.append(torch.as_tensor(output).reshape(len(batch), -1).double().cpu().numpy())
    return np.concatenate(features)


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(mu, sigma)` of `[samples, dim]` features (sigma with `N - 1`)."""
    if len(features) < 2:
        raise EvaluationDataError("FVD needs at least 2 videos on each side.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """`|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))`, with scipy's `sqrtm` (a small diagonal
    offset is added where the product is singular; imaginary round-off is dropped)."""
    from scipy import linalg

    difference = mu1 - mu2
    covariance_mean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covariance_mean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covariance_mean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covariance_mean):
        covariance_mean = covariance_mean.real
    return float(difference.dot(difference) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covariance_mean))


def frechet_video_distance(generated: np.ndarray, real: np.ndarray | tuple) -> float:
    """FVD from generated features and real features (or real `(mu, sigma)`)."""
    mu1, sigma1 = gaussian_statistics(generated)
    mu2, sigma2 = real if isinstance(real, tuple) else gaussian_statistics(real)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def generate_text_to_video_samples(
    generator,
    prompts: Sequence[str],
    output_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0,),
    num_clips: int = 1,
    fps: int = 6,
    progress: bool = True,
    **generation_kwargs,
) -> list[dict]:
    """One video per (prompt, seed) in `output_dir/videos`, listed in `output_dir/samples.jsonl` as each is written
    (a rerun makes only the missing ones). `generation_kwargs` go to `generator.text_to_video` (height, width,
    num_inference_steps, ...)."""
    output_dir = os.fspath(output_dir)
    os.makedirs(os.path.join(output_dir, "videos"), exist_ok=True)
    path = os.path.join(output_dir, "samples.jsonl")
    scalars = {key: value for key, value in generation_kwargs.items() if isinstance(value, (int, float, str))}
    settings = {"checkpoint": getattr(generator.model, "name_or_path", ""), "num_clips": num_clips, "fps": fps,
                **scalars}  # fmt: skip
    _check_settings(path, settings)  # videos made with other settings are never reused
    _drop_torn_tail(path)
    done = read_predictions(path)
    wanted = [(f"{index:05d}-seed{seed}", prompt, seed) for index, prompt in enumerate(prompts) for seed in seeds]
    generator.detokenizer.set_progress_bar_config(disable=True)
    for sample_id, prompt, seed in tqdm(wanted, desc="generating", unit="video", disable=not progress):
        if sample_id in done and done[sample_id].get("prompt") == prompt and os.path.isfile(done[sample_id]["video"]):
            continue
        output = generator.text_to_video(prompt, num_clips=num_clips, seed=seed, **generation_kwargs)
        video = generator.save_video(output.frames[0], os.path.join(output_dir, "videos", f"{sample_id}.mp4"), fps=fps)
        _append(path, [{"id": sample_id, "prompt": prompt, "seed": seed, "video": os.path.abspath(video)}])
    records = read_predictions(path)
    return [records[sample_id] for sample_id, _, _ in wanted]


def evaluate_text_to_video(
    samples: Sequence[dict],
    output_dir: str | os.PathLike,
    *,
    clip=None,
    i3d: Callable | None = None,
    real_videos: Sequence[str] | None = None,
    real_statistics: str | os.PathLike | None = None,
    num_frames: int = 16,
    stride: int = 1,
    resolution: int = 224,
    clip_frames: int | None = None,
    batch_size: int = 8,
    checkpoint: str = "",
    protocol: dict | None = None,
    progress: bool = True,
) -> dict:
    """CLIPSIM (with `clip`) and FVD (with `i3d` and `real_videos` or `real_statistics`) of generated `samples`
    (`{prompt, video}` rows); writes `per_video.jsonl` and `results.json` in `output_dir`.

    Args:
        clip: `load_clip`'s triple.
        i3d: a feature extractor (`load_i3d`, or any callable on `[batch, 3, frames, H, W]` in [-1, 1]).
        real_videos (`list[str]`): the real videos of the FVD (read like the generated ones).
        real_statistics (`str`): an `.npz` with `mu` and `sigma` instead (`save_real_statistics` writes one).
        num_frames, stride, resolution: the FVD clip: `num_frames` frames every `stride`-th, resized square.
        clip_frames (`int`, *optional*): frames per video for CLIPSIM (default: every frame of the video).
        protocol (`dict`, *optional*): more settings to record (prompts source, seeds, samples per prompt, ...).
    """
    if clip is None and i3d is None:
        raise InvalidInputError("give a CLIP (CLIPSIM), an I3D (FVD), or both.")
    if i3d is not None and (real_videos is None) == (real_statistics is None):
        raise InvalidInputError("FVD needs the real side: real_videos or real_statistics (one of them).")
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    records, generated, padded, errors = [], [], 0, 0
    for sample in tqdm(samples, desc="scoring", unit="video", disable=not progress):
        record = {"id": sample.get("id", sample["video"]), "prompt": sample["prompt"], "video": sample["video"]}
        try:
            if clip is not None:
                frames, _ = read_video_frames(sample["video"], clip_frames or 10**9)
                record["clipsim"] = clip_similarity(frames, sample["prompt"], clip)
            if i3d is not None:
                frames, was_padded = read_video_frames(sample["video"], num_frames, stride, resolution)
                generated.append(frames)
                padded += was_padded
        except VideoLaVITError as error:
            record["error"] = f"{type(error).__name__}: {error}"
            errors += 1
        records.append(record)
    per_video = os.path.join(output_dir, "per_video.jsonl")
    if os.path.exists(per_video):
        os.remove(per_video)
    _append(per_video, records)
    metrics = {"videos": {"scored": len(records) - errors, "errors": errors}}
    scores = [record["clipsim"] for record in records if "clipsim" in record]
    if clip is not None:
        metrics["clipsim"] = {"score": sum(scores) / len(scores) if scores else None, "videos": len(scores)}
    real_source = None
    if i3d is not None:
        features = video_features(generated, i3d, batch_size, progress)
        if real_statistics is not None:
            real = load_real_statistics(real_statistics)
            real_source, real_count = os.fspath(real_statistics), None
        else:
            real_frames = [read_video_frames(path, num_frames, stride, resolution)[0] for path in real_videos]
            real = video_features(real_frames, i3d, batch_size, progress)
            real_source, real_count = f"{len(real_videos)} real videos", len(real_videos)
        metrics["fvd"] = {
            "score": frechet_video_distance(features, real),
            "generated_videos": len(features),
            "real_videos": real_count,
            "padded_videos": padded,
        }
    parameters = {
        "samples": len(samples),
        "clipsim": {
            "frames": clip_frames or "all",
            "embedding": "projected pooler_output, cosine, mean over frames then videos",
            "clip": getattr(getattr(clip[0], "config", None), "_name_or_path", None) if clip else None,
        }
        if clip is not None
        else None,
        "fvd": {"num_frames": num_frames, "stride": stride, "resolution": resolution, "real": real_source,
                "extractor_kwargs": I3D_KWARGS}
        if i3d is not None
        else None,
        **(protocol or {}),
    }  # fmt: skip
    results = evaluation_results("text-to-video", checkpoint, metrics, parameters, per_sample_path=per_video)
    results["hub_task_type"] = "text-to-video"
    write_results(output_dir, results)
    return results


def save_real_statistics(features: np.ndarray, path: str | os.PathLike) -> str:
    """Write the `(mu, sigma)` of real features as an `.npz` (for `real_statistics`)."""
    mu, sigma = gaussian_statistics(features)
    np.savez(os.fspath(path), mu=mu, sigma=sigma)
    return os.fspath(path)


def load_real_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(os.fspath(path)) as data:
            return data["mu"], data["sigma"]
    except (OSError, KeyError, ValueError) as error:
        raise EvaluationDataError(f"{os.fspath(path)}: not an .npz of `mu` and `sigma` ({error}).") from error


__all__ = [
    "I3D_KWARGS",
    "clip_similarity",
    "evaluate_text_to_video",
    "frechet_distance",
    "frechet_video_distance",
    "gaussian_statistics",
    "generate_text_to_video_samples",
    "load_clip",
    "load_i3d",
    "load_real_statistics",
    "read_samples",
    "read_video_frames",
    "save_real_statistics",
    "video_features",
]
