"""One conversion of the whole reference release into Hub-ready folders.

`convert_release(ROOT, OUT)` reads the released layout (`language_model/`, `language_model_sft/`,
`visual_tokenizer/`, `motion_tokenizer.bin`, `video_detokenizer/`, `image_detokenizer/`, `video_3d_unet.bin`) and
writes:

- `OUT/understanding/`: `VideoLaVITForConditionalGeneration` + `VideoLaVITProcessor` from `language_model_sft/`
  (keyframes as features; `AutoModelForImageTextToText`, `pipeline("video-text-to-text")`);
- `OUT/generation/`: the same classes from `language_model/` with the release's keyframe and motion tokenizers
  (keyframes as codes; `VideoLaVITGenerator`);
- `OUT/video_detokenizer/`: `VideoLaVITDetokenizerPipeline` (with its keyframe components);
- `OUT/keyframe/`: `VideoLaVITKeyframePipeline` (text-to-image rendering of keyframe codes);
- a `README.md` model card in each (`video_lavit.model_cards`), and `OUT/conversion_report.json`: every source
  file read (size), every file written (size), the time of each part.

Weights are safetensors, sharded at `max_shard_size`. Free disk space is checked first (the sources' size, as the
outputs keep their dtypes). Each part is written whole or not at all (a killed conversion leaves no part folder
that loads, only a hidden `.partial-` folder that the next run removes), and a rerun skips the parts the report
lists as done (with the same settings, and still there), so an interrupted conversion resumes.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import time
from pathlib import Path

from ..errors import CheckpointConversionError, OutputError
from ..files import replace_file, write_folder

REPORT_NAME = "conversion_report.json"
PARTS = ("understanding", "generation", "video_detokenizer", "keyframe")
RELEASE_LAYOUT = (
    "language_model",
    "language_model_sft",
    "visual_tokenizer",
    "motion_tokenizer.bin",
    "video_detokenizer",
    "image_detokenizer",
    "video_3d_unet.bin",
)


def _files(folder: Path) -> list[dict]:
    if folder.is_file():
        return [{"path": str(folder), "bytes": folder.stat().st_size}]
    return [{"path": str(path), "bytes": path.stat().st_size} for path in sorted(folder.rglob("*")) if path.is_file()]


def _check_layout(root: Path) -> None:
    if not root.is_dir():
        raise CheckpointConversionError(f"{root}: no such folder; pass the Video-LaVIT release folder.")
    missing = [name for name in RELEASE_LAYOUT if not (root / name).exists()]
    if missing:
        raise CheckpointConversionError(
            f"{root}: not the whole Video-LaVIT release: {', '.join(missing)} missing. Download it with "
            "`hf download rain1011/Video-LaVIT-v1 --local-dir Video-LaVIT-v1`, or convert parts with "
            "`video-lavit convert language-model | detokenizer | ...`."
        )


def _check_space(root: Path, output: Path, parts: list[str]) -> int:
    sources = {
        "understanding": ["language_model_sft"],
        "generation": ["language_model", "visual_tokenizer", "motion_tokenizer.bin"],
        "video_detokenizer": ["video_3d_unet.bin", "video_detokenizer", "visual_tokenizer", "image_detokenizer"],
        "keyframe": ["visual_tokenizer", "image_detokenizer"],
    }
    needed = sum(item["bytes"] for part in parts for name in sources[part] for item in _files(root / name))
    probe = output
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise OutputError(
            f"{output}: the conversion needs about {needed / 1e9:.1f} GB and {probe} has {free / 1e9:.1f} GB free; "
            "free some space or choose another output folder."
        )
    return needed


def _read_report(path: Path) -> dict:
    if not path.is_file():
        return {"parts": {}}
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"parts": {}}
    return report if isinstance(report.get("parts"), dict) else {"parts": {}}


def _write_card(part: str, folder: Path, output: Path, eval_results: dict | None, repo_ids: dict | None) -> None:
    from huggingface_hub import ModelCard

    from ..model_cards import model_card

    results = (eval_results or {}).get(part)
    if results is None and (folder / "README.md").is_file():  # keep the figures an earlier run put in
        results = ModelCard.load(folder / "README.md").data.eval_results
    if repo_ids:
        where = dict(repo_id=repo_ids[part], detokenizer_id=repo_ids["video_detokenizer"])
    else:
        where = dict(repo_id=str(folder), repo_root=str(output))
    card = model_card(part, eval_results=results, **where)
    with replace_file(folder / "README.md") as file:
        file.write(str(card).encode("utf-8"))


def convert_release(
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    parts: tuple[str, ...] = PARTS,
    max_shard_size: str | int = "5GB",
    num_attention_heads: int = 16,
    motion_attention_heads: int = 8,
    vision_attention_heads: int | None = None,
    motion_encoder_heads: int = 8,
    eval_results: dict | None = None,
    hub_prefix: str | None = None,
    progress: bool = True,
) -> dict:
    """Convert the release at `root` into `output_dir` (see the module docstring); returns the report.

    Args:
        parts (`tuple[str, ...]`): which of `PARTS` to write (default all).
        max_shard_size: the largest safetensors shard (`save_pretrained`'s argument).
        num_attention_heads, motion_attention_heads, vision_attention_heads, motion_encoder_heads: the attention
            heads the checkpoints' shapes do not tell (the release's: 16, 8, 16, 8).
        eval_results (`dict`, *optional*): per part, `huggingface_hub.EvalResult`s for its card (a part's
            card keeps the figures it has when none are given for it).
        hub_prefix (`str`, *optional*): the Hub repositories the parts will be published to,
            `model_cards.hub_repo_ids(hub_prefix)` (`USER/Video-LaVIT` -> `USER/Video-LaVIT-understanding`, ...):
            the cards' snippets load those ids and the report lists each part's `repo_id` and `hf upload` command.
            Without it the snippets load the output folders. Given on a rerun, the cards of converted parts are
            written again.
        progress (`bool`): print a line per part.

    Raises:
        `CheckpointConversionError`: the release is incomplete or a checkpoint is malformed.
        `InvalidInputError`: `hub_prefix` is not an `owner/name` Hub id.
        `OutputError`: not enough free space, or the output cannot be written.
    """
    from ..model_cards import hub_repo_ids
    from .detokenizer import convert_detokenizer
    from .language_model import convert_language_model

    repo_ids = hub_repo_ids(hub_prefix) if hub_prefix is not None else None
    root, output = Path(root), Path(output_dir)
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise CheckpointConversionError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}.")
    _check_layout(root)
    output.mkdir(parents=True, exist_ok=True)
    report_path = output / REPORT_NAME
    report = _read_report(report_path)
    for leftover in output.glob(".*.partial-*"):  # a killed run's staging folders
        shutil.rmtree(leftover, ignore_errors=True)
    settings = {
        "release": str(root.resolve()),
        "max_shard_size": str(max_shard_size),
        "num_attention_heads": num_attention_heads,
        "motion_attention_heads": motion_attention_heads,
        "vision_attention_heads": vision_attention_heads,
        "motion_encoder_heads": motion_encoder_heads,
    }
    same = report.get("settings") == settings  # a part made with other settings is made again
    todo = [
        part
        for part in parts
        if not same or report["parts"].get(part, {}).get("status") != "done" or not (output / part).is_dir()
    ]
    needed = _check_space(root, output, todo) if todo else 0
    report.update(settings=settings, sources=_files(root))
    heads = dict(num_attention_heads=num_attention_heads, vision_attention_heads=vision_attention_heads)
    detokenizer = None

    def detokenizer_pipeline():
        nonlocal detokenizer
        if detokenizer is None:
            detokenizer = convert_detokenizer(
                root, motion_encoder_heads=motion_encoder_heads, motion_tokenizer_heads=motion_attention_heads,
                visual_num_attention_heads=num_attention_heads, vision_num_attention_heads=vision_attention_heads,
            )  # fmt: skip
        return detokenizer

    for part in parts:
        folder = output / part
        if part not in todo:
            if repo_ids or (eval_results and part in eval_results):  # new names or figures: its card again
                _write_card(part, folder, output, eval_results, repo_ids)
                _set_publishing(report["parts"][part], repo_ids, part, folder)
            if progress:
                print(f"{part}: already converted ({folder})", flush=True)
            continue
        started = time.perf_counter()
        if part == "understanding":
            convert_language_model(root / "language_model_sft", folder, motion_attention_heads=motion_attention_heads,
                                   overwrite=True, max_shard_size=max_shard_size, **heads)  # fmt: skip
        elif part == "generation":
            convert_language_model(
                root / "language_model", folder, visual_tokenizer=root / "visual_tokenizer",
                motion_tokenizer=root / "motion_tokenizer.bin", keyframe_input="codes",
                motion_attention_heads=motion_attention_heads, overwrite=True, max_shard_size=max_shard_size, **heads,
            )  # fmt: skip
        else:
            saved = detokenizer_pipeline() if part == "video_detokenizer" else detokenizer_pipeline().keyframe_pipeline
            write_folder(folder, functools.partial(saved.save_pretrained, max_shard_size=max_shard_size),
                         overwrite=True, sources=[root])  # fmt: skip
        _write_card(part, folder, output, eval_results, repo_ids)
        report["parts"][part] = {
            "status": "done",
            "folder": str(folder),
            "seconds": round(time.perf_counter() - started, 2),
            "files": _files(folder),
        }
        _set_publishing(report["parts"][part], repo_ids, part, folder)
        with replace_file(report_path) as file:  # after each part: a rerun resumes from here
            file.write(json.dumps(report, indent=2).encode("utf-8"))
        if progress:
            written = sum(item["bytes"] for item in report["parts"][part]["files"])
            print(f"{part}: wrote {folder} ({written / 1e6:.1f} MB, {report['parts'][part]['seconds']:.1f} s)",
                  flush=True)  # fmt: skip
    report["estimated_bytes"] = needed
    with replace_file(report_path) as file:
        file.write(json.dumps(report, indent=2).encode("utf-8"))
    return report


def _set_publishing(entry: dict, repo_ids: dict | None, part: str, folder: Path) -> None:
    """The part's Hub repository and upload command in its report entry, or none when its card loads the folder."""
    entry.pop("repo_id", None)
    entry.pop("upload_command", None)
    if repo_ids:
        entry["repo_id"] = repo_ids[part]
        entry["upload_command"] = f"hf upload {repo_ids[part]} {shlex.quote(str(folder))} --repo-type model"


__all__ = ["PARTS", "RELEASE_LAYOUT", "REPORT_NAME", "convert_release"]
