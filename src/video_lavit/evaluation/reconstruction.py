"""Reconstruction: how much of a video survives its tokens.

For each video of a folder (or list), clip by clip as the processor cuts it:
- **motion**: the motion grid `[2, 24, 20, 36]` goes through the motion tokenizer (encode, quantize, decode) and the
  end-point error is measured against the grid it read, in pixels of the source frame: a grid value `v` of channel
  x (y) is `v * std_x / 10 * width` (`std_y`, `height`) pixels, undoing the processor's normalisation
  (`video_lavit.processing.motion_vectors`). Reported: the mean EPE and the fractions of points under 1, 3 and
  5 px (`px1`, `px3`, `px5`, the optical-flow convention), over the clips' real frames (padding excluded) and every
  grid cell; and the mean EPE in grid units;
- **codes**: motion codebook usage (the fraction of codes used at least once over the whole set) and perplexity
  (`exp` of the entropy of the code histogram); the same for the keyframe codes;
- **frames** (with a detokenizer pipeline): each clip is rendered from its own keyframe and motion codes (seeded),
  and compared with the source frames at the clip's times, resized to the render size (bicubic): PSNR (dB, per
  frame, averaged over each clip, then over the clips) and SSIM (11x11 Gaussian window, sigma 1.5, on RGB in
  [0, 1], channels averaged).

Per-video figures go to `per_video.jsonl` as each video is done (a rerun skips them); `results.json` holds the
aggregates and every setting.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import EvaluationDataError, VideoLaVITError
from ..processing.motion_vectors import MOTION_INPUT_SCALE
from ..processing.video_processing_video_lavit import without_run_only_options
from .results import evaluation_results, write_results
from .video_qa import VIDEO_EXTENSIONS, _append, _check_settings, _drop_torn_tail, read_predictions

EPE_THRESHOLDS = (1, 3, 5)


def list_videos(folder: str | os.PathLike) -> list[str]:
    """The video files of `folder` (by extension, sorted by name)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EvaluationDataError(f"{folder}: no such folder of videos.")
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS and os.path.isfile(os.path.join(folder, name))
    ]


def motion_end_point_error(
    reconstructed: torch.Tensor, target: torch.Tensor, motion_std: Sequence[float], width: int, height: int
) -> torch.Tensor:
    """Per-point end-point error in pixels between motion grids `[..., 2, frames, rows, columns]` (channel 0 is x)."""
    scale = torch.tensor(
        [motion_std[0] / MOTION_INPUT_SCALE * width, motion_std[1] / MOTION_INPUT_SCALE * height],
        dtype=torch.float32,
        device=target.device,
    ).view(2, 1, 1, 1)
    difference = (reconstructed.float() - target.float()) * scale
    return difference.pow(2).sum(dim=-4).sqrt()


def code_usage(counts: Counter, codebook_size: int) -> dict:
    """`usage` (the fraction of the codebook used), `perplexity` (exp of the histogram's entropy) and counts."""
    total = sum(counts.values())
    if not total:
        return {"usage": None, "perplexity": None, "codes_used": 0, "tokens": 0, "codebook_size": codebook_size}
    probabilities = np.array([count / total for count in counts.values()], dtype=np.float64)
    entropy = float(-(probabilities * np.log(probabilities)).sum())
    return {
        "usage": len(counts) / codebook_size,
        "perplexity": math.exp(entropy),
        "codes_used": len(counts),
        "tokens": total,
        "codebook_size": codebook_size,
    }


def psnr(frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR (dB) of `[frames, 3, H, W]` tensors in [0, 1] (100 dB where they are equal)."""
    mse = (frames.float() - reference.float()).pow(2).flatten(1).mean(dim=1)
    return torch.where(mse > 0, 10 * torch.log10(1 / mse.clamp_min(1e-10)), torch.full_like(mse, 100.0))


def ssim(frames: torch.Tensor, reference: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-frame SSIM of `[frames, 3, H, W]` tensors in [0, 1] (Gaussian window, the usual constants, channels
    averaged, valid region only)."""
    coordinates = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    gauss = torch.exp(-(coordinates**2) / (2 * sigma**2))
    gauss = gauss / gauss.sum()
    kernel = (gauss[:, None] * gauss[None, :]).expand(3, 1, window, window).contiguous()
    x, y = frames.float(), reference.float()
    if min(x.shape[-2:]) < window:
        raise EvaluationDataError(
            f"SSIM needs frames of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}."
        )

    def blur(value):
        return F.conv2d(value, kernel.to(value.device), groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    covariance = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.flatten(1).mean(dim=1)


def source_frames(path: str, times: Sequence[float], height: int, width: int) -> torch.Tensor:
    """The source video's frames shown at `times` (seconds, ascending), resized to `height` x `width`:
    `[len(times), 3, height, width]` in [0, 1], in one decoding pass. (Rotation metadata is not applied: compare
    videos stored upright.)"""
    import av
    from PIL import Image

    wanted, frames, last = list(times), [], None
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                time = frame.time if frame.time is not None else 0.0
                while wanted and time > wanted[0] + 1e-6 and last is not None:
                    frames.append(last)
                    wanted.pop(0)
                if not wanted:
                    break
                last = frame.to_image().convert("RGB").resize((width, height), Image.BICUBIC)
    except (av.FFmpegError, OSError) as error:
        raise EvaluationDataError(f"{path}: the source frames cannot be decoded ({error}).") from error
    if last is None:
        raise EvaluationDataError(f"{path}: no frame decodes.")
    frames += [last] * len(wanted)
    array = np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in frames])
    return torch.from_numpy(array).permute(0, 3, 1, 2)


@torch.no_grad()
def reconstruct_video_record(
    model, processor, path: str, *, detokenizer=None, render: dict | None = None, options: dict | None = None
) -> dict:
    """The figures of one video (see the module docstring): a `per_video.jsonl` record."""
    video_processor = processor.video_processor
    settings = video_processor._options(dict(options or {}))
    motion_tokenizer = model.model.motion_tokenizer
    device = model.device
    with video_processor.clip_reader(path, **(options or {})) as reader:
        clips = list(reader)
        info = reader.info
    if not clips:
        raise EvaluationDataError(f"{path}: no clip.")
    grids = torch.stack([clip.motion_vectors for clip in clips]).to(device)
    codes = model.model.get_motion_codes(grids)
    decoded = motion_tokenizer.decode(codes.to(device)).float()
    valid = [clip.num_valid_frames for clip in clips]
    errors = torch.cat([
        motion_end_point_error(decoded[index, :, : valid[index]], grids[index, :, : valid[index]],
                               settings["motion_std"], info.width, info.height).flatten()
        for index in range(len(clips))
    ])  # fmt: skip
    grid_errors = torch.cat([
        (decoded[index, :, : valid[index]] - grids[index, :, : valid[index]].float()).pow(2).sum(0).sqrt().flatten()
        for index in range(len(clips))
    ])  # fmt: skip
    pixels = torch.stack([video_processor.preprocess_keyframe(clip.keyframe, **(options or {})) for clip in clips])
    keyframe = model.model.visual_tokenizer.tokenize(pixels.to(device), selection=model.config.keyframe_selection)
    keyframe_codes = keyframe.indices[keyframe.attention_mask]
    record = {
        "id": path,
        "video": path,
        "width": info.width,
        "height": info.height,
        "clips": len(clips),
        "frames": sum(valid),
        "points": int(errors.numel()),
        "epe_sum": float(errors.sum()),
        "epe_grid_sum": float(grid_errors.sum()),
        **{f"under_{t}px": int((errors < t).sum()) for t in EPE_THRESHOLDS},
        "motion_codes": dict(Counter(codes.flatten().tolist())),
        "keyframe_codes": dict(Counter(keyframe_codes.tolist())),
    }
    if detokenizer is not None:
        render = dict(render or {})
        seed = render.pop("seed", 0)
        generator = torch.Generator().manual_seed(seed)
        output = detokenizer(
            keyframe_codes=[list(keyframe_codes.split(keyframe.num_tokens.tolist()))],
            motion_codes=codes[None],
            generator=generator,
            output_type="pt",
            **render,
        )
        frames = output.frames[0].float().cpu()  # [clips * 24, 3, H, W] in [0, 1]
        height, width = frames.shape[-2:]
        rate = float(info.frame_rate)
        psnrs, ssims = [], []
        times = [clip.start_time + step / rate for index, clip in enumerate(clips) for step in range(valid[index])]
        reference = source_frames(path, times, height, width)  # every clip's frames, one pass
        offset = 0
        for index in range(len(clips)):
            start = index * settings["num_frames"]
            rendered = frames[start : start + valid[index]]
            expected = reference[offset : offset + valid[index]]
            offset += valid[index]
            psnrs.append(float(psnr(rendered, expected).mean()))
            ssims.append(float(ssim(rendered, expected).mean()))
        record.update(psnr=psnrs, ssim=ssims)
    return record


def reconstruction_metrics(records: Sequence[dict], motion_codebook: int, keyframe_codebook: int) -> dict:
    """The set's figures from its per-video records (errored videos are counted apart)."""
    done = [record for record in records if record.get("error") is None]
    points = sum(record["points"] for record in done)
    motion = {
        "epe": sum(record["epe_sum"] for record in done) / points if points else None,
        "epe_grid_units": sum(record["epe_grid_sum"] for record in done) / points if points else None,
        **{f"px{t}": sum(record[f"under_{t}px"] for record in done) / points if points else None
           for t in EPE_THRESHOLDS},
        "points": points,
        "clips": sum(record["clips"] for record in done),
    }  # fmt: skip
    motion_counts, keyframe_counts = Counter(), Counter()
    for record in done:
        motion_counts.update({int(key): value for key, value in record["motion_codes"].items()})
        keyframe_counts.update({int(key): value for key, value in record["keyframe_codes"].items()})
    metrics = {
        "motion": motion,
        "motion_codes": code_usage(motion_counts, motion_codebook),
        "keyframe_codes": code_usage(keyframe_counts, keyframe_codebook),
        "videos": {"done": len(done), "errors": len(records) - len(done)},
    }
    rendered = [record for record in done if "psnr" in record]
    if rendered:
        clips_psnr = [value for record in rendered for value in record["psnr"]]
        clips_ssim = [value for record in rendered for value in record["ssim"]]
        metrics["frames"] = {
            "psnr": sum(clips_psnr) / len(clips_psnr),
            "ssim": sum(clips_ssim) / len(clips_ssim),
            "clips": len(clips_psnr),
        }
    return metrics


def evaluate_reconstruction(
    model,
    processor,
    videos: Sequence[str],
    output_dir: str | os.PathLike,
    *,
    detokenizer=None,
    height: int = 320,
    width: int = 512,
    num_inference_steps: int = 25,
    seed: int = 0,
    processor_options: dict | None = None,
    checkpoint: str = "",
    dataset: dict | None = None,
    progress: bool = True,
) -> dict:
    """Measure the round trips of `videos` (see the module docstring); resumable with the same `output_dir`.

    Args:
        model, processor: a Video-LaVIT checkpoint (its motion and keyframe tokenizers are used) and its processor.
        videos (`list[str]`): video files.
        detokenizer ([`VideoLaVITDetokenizerPipeline`], *optional*): renders the clips for PSNR / SSIM (needs
            the generation checkpoint's keyframe codebook).
        height, width, num_inference_steps, seed: the rendering's size, steps and seed.
        processor_options (`dict`, *optional*): video processor options (e.g. `max_clips`).
    """
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "per_video.jsonl")
    render = {"height": height, "width": width, "num_inference_steps": num_inference_steps, "seed": seed}
    settings = {
        "checkpoint": getattr(model, "name_or_path", ""),
        "processor_options": without_run_only_options(processor_options),
        "render": render if detokenizer is not None else None,
    }
    _check_settings(path, settings)
    _drop_torn_tail(path)
    done = {key: record for key, record in read_predictions(path).items() if record.get("error") is None}
    if detokenizer is not None:
        detokenizer.set_progress_bar_config(disable=True)
    for video in tqdm(videos, desc="reconstructing", unit="video", disable=not progress):
        if video in done:
            continue
        try:
            record = reconstruct_video_record(model, processor, video, detokenizer=detokenizer, render=render,
                                              options=processor_options)  # fmt: skip
        except VideoLaVITError as error:  # recorded; the rest goes on
            record = {"id": video, "video": video, "error": f"{type(error).__name__}: {error}"}
        _append(path, [record])
    records = read_predictions(path)
    ordered = [records[video] for video in videos if video in records]
    metrics = reconstruction_metrics(
        ordered,
        model.config.motion_tokenizer_config.codebook_size,
        model.config.visual_tokenizer_config.codebook_size,
    )
    parameters = {
        "videos": len(videos),
        "video_processor": {**processor.video_processor.to_dict(), **(processor_options or {})},
        "epe": "pixels of the source frame; points: every grid cell of every real frame of every clip",
        "epe_thresholds_px": list(EPE_THRESHOLDS),
        "render": render if detokenizer is not None else None,
        "frames_reference": "source frames at the clip's times, resized bicubically to the render size",
        "ssim": {"window": 11, "sigma": 1.5, "data_range": 1.0, "channels": "RGB, averaged"},
    }
    results = evaluation_results("reconstruction", checkpoint, metrics, parameters, per_sample_path=path,
                                 dataset=dataset)  # fmt: skip
    results["hub_task_type"] = "video-to-video"
    write_results(output_dir, results)
    return results


__all__ = [
    "EPE_THRESHOLDS",
    "code_usage",
    "evaluate_reconstruction",
    "list_videos",
    "motion_end_point_error",
    "psnr",
    "reconstruct_video_record",
    "reconstruction_metrics",
    "source_frames",
    "ssim",
]
