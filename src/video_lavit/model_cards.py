"""Model cards for converted folders, built with `huggingface_hub.ModelCard` / `ModelCardData`.

`model_card(kind, ...)` gives the card of one part of the release (`"understanding"`, `"generation"`,
`"video_detokenizer"`, `"keyframe"`): its metadata (library, pipeline tag, base model and relation, license,
datasets, the paper, tags, and evaluation results from `video_lavit.evaluation.results`), a usage snippet with the
versions it was made with, and its limitations. `video-lavit convert release` writes one `README.md` per folder.
"""

from __future__ import annotations

from importlib import metadata

from huggingface_hub import ModelCard, ModelCardData

PAPER = "arxiv:2402.03161"
RELEASE_REPO = "rain1011/Video-LaVIT-v1"
_LLAMA = "meta-llama/Llama-2-7b-hf"

PARTS = {
    "understanding": {
        "title": "Video-LaVIT (understanding)",
        "library_name": "transformers",
        "pipeline_tag": "video-text-to-text",
        "base_model": _LLAMA,
        "base_model_relation": "finetune",
        "datasets": ["liuhaotian/LLaVA-Instruct-150K", "MBZUAI/VideoInstruct-100K"],
        "tags": ["video-lavit", "video-question-answering", "image-text-to-text", "motion-vectors"],
        "summary": "the instruction-tuned checkpoint (`language_model_sft/`): keyframes read as continuous features, "
        "answers questions about videos and images",
    },
    "generation": {
        "title": "Video-LaVIT (generation)",
        "library_name": "transformers",
        "pipeline_tag": "text-to-video",
        "base_model": _LLAMA,
        "base_model_relation": "finetune",
        "datasets": ["TempoFunk/webvid-10M", "togethercomputer/RedPajama-Data-1T"],
        "tags": ["video-lavit", "image-to-video", "text-to-image", "motion-vectors"],
        "summary": "the pre-trained checkpoint (`language_model/`): keyframes and motion as discrete codes, writes "
        "them for text-to-video, image-to-video and text-to-image (render them with the detokenizer pipelines)",
    },
    "video_detokenizer": {
        "title": "Video-LaVIT video detokenizer",
        "library_name": "diffusers",
        "pipeline_tag": "image-to-video",
        "base_model": None,
        "base_model_relation": None,
        "datasets": ["TempoFunk/webvid-10M"],
        "tags": ["video-lavit", "text-to-video", "stable-video-diffusion-architecture"],
        "summary": "`VideoLaVITDetokenizerPipeline`: keyframe and motion tokens -> 24-frame clips (an "
        "SVD-architecture 3D UNet conditioned on the decoded motion), with the keyframe components",
    },
    "keyframe": {
        "title": "Video-LaVIT keyframe detokenizer",
        "library_name": "diffusers",
        "pipeline_tag": "text-to-image",
        "base_model": None,
        "base_model_relation": None,
        "datasets": [],
        "tags": ["video-lavit", "sdxl-architecture"],
        "summary": "`VideoLaVITKeyframePipeline`: keyframe codes -> images (the token decoder and an "
        "SDXL-architecture UNet)",
    },
}

_USAGE = {
    "understanding": """```python
# pip install {pins}
from transformers import pipeline
import video_lavit  # registers the Video-LaVIT classes and the "video-text-to-text" task

answer = pipeline("video-text-to-text", model="{repo}", dtype="bfloat16", device_map="auto")
print(answer(videos="clip.mp4", text="What is happening in this video?"))
```""",
    "generation": """```python
# pip install {pins}
import torch
import video_lavit

{generator_comment}
generator = video_lavit.VideoLaVITGenerator.from_pretrained({generator_source}, dtype=torch.bfloat16, device="cuda")
video = generator.text_to_video("a boat sailing on a calm lake at sunset", num_clips=2, seed=0)
generator.save_video(video.frames[0], "boat.mp4")
```""",
    "video_detokenizer": """```python
# pip install {pins}
import video_lavit

pipeline = video_lavit.VideoLaVITDetokenizerPipeline.from_pretrained("{repo}")
pipeline.enable_model_cpu_offload()  # lowers the peak GPU memory
# keyframe_codes / motion_codes come from the generation model (see VideoLaVITGenerator)
```""",
    "keyframe": """```python
# pip install {pins}
import video_lavit

pipeline = video_lavit.VideoLaVITKeyframePipeline.from_pretrained("{repo}")
# keyframe_codes come from the generation model (VideoLaVITGenerator.text_to_image)
```""",
}

_LIMITATIONS = """## Limitations

- Videos are read as the reference reads them: re-encoded to MPEG-4 Part 2 at 6 fps (any codec PyAV decodes), cut
  into 24-frame clips starting at every second I-frame; at most 16 clips by default (`max_clips`), so a long video
  is sampled, and the first 2 seconds and a tail shorter than a clip are not read.
- Memory: the language model is LLaMA-2-7B sized (7 billion parameters: 14 GB of weights in bfloat16, 28 GB in
  float32); the video detokenizer is an SVD-size UNet with its VAEs (`enable_model_cpu_offload()` lowers its
  peak). `device_map="auto"` and transformers' 8-/4-bit `BitsAndBytesConfig` apply to the language model
  (with `llm_int8_skip_modules=video_lavit.QUANTIZATION_SKIP_MODULES`, so that the tokenizers stay as they are).
- The weights carry the Llama 2 license and the biases of their training data (web videos and captions).
"""


def _versions() -> str:
    pins = []
    for name in ("video-lavit", "transformers", "diffusers", "torch"):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(pins)


def hub_repo_ids(prefix: str) -> dict[str, str]:
    """The Hub repository of each part when the release is published under `prefix` (`"USER/Video-LaVIT"` ->
    `"USER/Video-LaVIT-understanding"`, `-generation`, `-video-detokenizer`, `-keyframe`).

    Raises:
        `InvalidInputError`: `prefix` is not an `owner/name` Hub id.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from .errors import InvalidInputError

    ids = {part: f"{prefix}-{part.replace('_', '-')}" for part in PARTS}
    try:
        for repo_id in (prefix, *ids.values()):
            validate_repo_id(repo_id)
    except HFValidationError as error:
        raise InvalidInputError(f"{prefix!r} is not a Hub repository prefix like USER/Video-LaVIT: {error}") from None
    if prefix.count("/") != 1:
        raise InvalidInputError(f"{prefix!r} is not a Hub repository prefix like USER/Video-LaVIT (owner/name).")
    return ids


def model_card(
    kind: str,
    repo_id: str = "converted",
    repo_root: str | None = None,
    eval_results=None,
    detokenizer_id: str | None = None,
) -> ModelCard:
    """The card of one converted part (`kind` a key of `PARTS`), for the folder or Hub repository `repo_id`.

    Args:
        kind (`str`): `"understanding"`, `"generation"`, `"video_detokenizer"` or `"keyframe"`.
        repo_id (`str`): where the part will be loaded from, a folder or a Hub id (used in the usage snippet).
        repo_root (`str`, *optional*): the folder holding every part (the generation snippet loads it whole).
        eval_results (`list[EvalResult]`, *optional*): from `video_lavit.evaluation.card_eval_results`.
        detokenizer_id (`str`, *optional*): for `"generation"`, the video detokenizer's folder or Hub id; the
            snippet then loads the two by name instead of `repo_root`.
    """
    if kind not in PARTS:
        raise ValueError(f"unknown part {kind!r}; use one of {', '.join(PARTS)}")
    part = PARTS[kind]
    data = ModelCardData(
        license="llama2",
        library_name=part["library_name"],
        pipeline_tag=part["pipeline_tag"],
        base_model=part["base_model"],
        base_model_relation=part["base_model_relation"],
        datasets=part["datasets"] or None,
        tags=[*part["tags"], PAPER],
        model_name=part["title"],
        eval_results=eval_results or None,
    )
    if detokenizer_id is not None:
        generator = ("# the generation checkpoint and the video detokenizer", f'"{repo_id}", "{detokenizer_id}"')
    else:
        generator = (
            "# the folder `video-lavit convert release` wrote: generation/ and video_detokenizer/ in one call",
            f'"{repo_root or ".."}"',
        )
    usage = _USAGE[kind].format(
        pins=_versions(), repo=repo_id, generator_comment=generator[0], generator_source=generator[1]
    )
    content = "\n".join(
        [
            "---",
            data.to_yaml(),
            "---",
            "",
            f"# {part['title']}",
            "",
            f"Video-LaVIT ([paper](https://arxiv.org/abs/2402.03161)) reads and writes video as tokens: a keyframe "
            "per 24-frame clip, tokenized like an image, and the clip's MPEG-4 motion vectors, tokenized by a VQ "
            f"motion tokenizer. This folder is {part['summary']}.",
            "",
            f"Converted to safetensors from the reference release [`{RELEASE_REPO}`](https://huggingface.co/"
            f"{RELEASE_REPO}) with `video-lavit convert release`; the outputs match the reference's.",
            "",
            "## Usage",
            "",
            usage,
            "",
            _LIMITATIONS,
        ]
    )
    return ModelCard(content)


__all__ = ["PARTS", "PAPER", "RELEASE_REPO", "hub_repo_ids", "model_card"]
