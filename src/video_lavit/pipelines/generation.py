"""End to end: prompts and images -> tokens (`VideoLaVITForConditionalGeneration`) -> frames (the detokenizer).

`VideoLaVITGenerator` is the one user-facing entry point for text-to-video (any number of clips), image-to-video,
text-to-image and reconstructing a video from its own tokens; `save_video` writes frames with diffusers'
`export_to_video`. It follows the reference's `VideoLaVITGenerationRunner`: text prompts
without BOS; keyframes sampled with guidance 4.0; motion with guidance 7.0, decoded greedily for text-to-video and
sampled for image-to-video; each clip prompted by the whole sequence so far.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import torch
from diffusers.utils import export_to_video
from transformers.utils import ModelOutput

from ..errors import InvalidInputError
from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
from ..processing.processing_video_lavit import VideoLaVITProcessor
from .pipeline_video_lavit import VideoLaVITDetokenizerPipeline, VideoLaVITDetokenizerPipelineOutput

KEYFRAME_SAMPLING = {"do_sample": True, "top_k": 50, "top_p": 1.0}


@dataclass
class VideoTokensOutput(ModelOutput):
    """Output of [`generate_video_tokens`].

    Attributes:
        sequences (`list[torch.LongTensor]`): per prompt, the whole sequence (prompt, then every generated clip);
            `pad_left(sequences, pad_id)` makes the prompt of a next call that continues the video.
        keyframe_codes (`list[list[torch.LongTensor]]`): per prompt, per clip, the keyframe codes (1..256).
        motion_codes (`list[torch.LongTensor]`): per prompt, `[clips, 135]` motion codes.
    """

    sequences: list[torch.LongTensor] | None = None
    keyframe_codes: list[list[torch.LongTensor]] | None = None
    motion_codes: list[torch.LongTensor] | None = None


def pad_left(rows: Sequence[torch.LongTensor], pad_id: int) -> tuple[torch.LongTensor, torch.LongTensor]:
    """1-D id sequences -> left-padded `input_ids` and `attention_mask` `[len(rows), longest]`."""
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long, device=rows[0].device)
    mask = torch.zeros((len(rows), length), dtype=torch.long, device=rows[0].device)
    for index, row in enumerate(rows):
        ids[index, length - len(row) :] = row
        mask[index, length - len(row) :] = 1
    return ids, mask


def generate_video_tokens(
    model: VideoLaVITForConditionalGeneration,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor | None = None,
    num_clips: int = 1,
    image_codes: Sequence[torch.Tensor] | None = None,
    keyframe_guidance_scale: float = 4.0,
    motion_guidance_scale: float = 7.0,
    keyframe_kwargs: dict | None = None,
    motion_kwargs: dict | None = None,
) -> VideoTokensOutput:
    """Clips in a row: keyframe, then motion, each clip prompted by the whole sequence so far, as the reference.

    Args:
        model ([`VideoLaVITForConditionalGeneration`]): a generation checkpoint (`keyframe_input="codes"`).
        input_ids (`torch.LongTensor` `[batch, length]`): left-padded text prompts (no BOS), or previous
            `VideoTokensOutput.sequences` padded with [`pad_left`] to continue a video.
        attention_mask (`torch.Tensor` `[batch, length]`, *optional*): 1 at real tokens.
        num_clips (`int`): clips to generate per prompt.
        image_codes (list of `torch.LongTensor`, *optional*): image-to-video: one keyframe's codes per prompt,
            used as the first clip's keyframe instead of generating it; the prompt becomes `[IMG] codes [/IMG]`
            followed by the text, as the reference's.
        keyframe_guidance_scale, motion_guidance_scale (`float`): classifier-free guidance of each phase.
        keyframe_kwargs, motion_kwargs (`dict`): `generate` options of each phase (the reference samples keyframes
            with top-k 50 and decodes text-to-video motion greedily; image-to-video samples motion).
    """
    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1:
        raise InvalidInputError(f"num_clips must be an integer of at least 1, got {num_clips!r}")
    layout, pad_id = model.token_layout, model.model.pad_token_id
    device = model.get_input_embeddings().weight.device
    attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    rows = [row[mask.bool()].to(device) for row, mask in zip(input_ids, attention_mask)]
    keyframe_codes: list[list[torch.LongTensor]] = [[] for _ in rows]
    motion_codes: list[list[torch.LongTensor]] = [[] for _ in rows]
    if image_codes is not None:
        if len(image_codes) != len(rows):
            raise InvalidInputError(f"got {len(image_codes)} keyframes for {len(rows)} prompts")
        # The keyframe comes first, then the text, as the reference's image-to-video prompts.
        start = torch.tensor([layout.image_start_id], device=device)
        end = torch.tensor([layout.image_end_id], device=device)
        rows = [
            torch.cat([start, layout.visual_codes_to_ids(torch.as_tensor(codes, device=device).long()), end, row])
            for row, codes in zip(rows, image_codes)
        ]
    for clip in range(num_clips):
        if clip > 0 or image_codes is None:
            ids, mask = pad_left(rows, pad_id)
            rows = model.generate_keyframe_tokens(
                ids, mask, guidance_scale=keyframe_guidance_scale, **(keyframe_kwargs or {})
            )
        ids, mask = pad_left(rows, pad_id)
        rows = model.generate_motion_tokens(ids, mask, guidance_scale=motion_guidance_scale, **(motion_kwargs or {}))
        for index, row in enumerate(rows):
            keyframe_end = int((row == layout.image_end_id).nonzero()[-1])
            keyframe_start = int((row[:keyframe_end] == layout.image_start_id).nonzero()[-1])
            keyframe_codes[index].append(layout.ids_to_visual_codes(row[keyframe_start + 1 : keyframe_end]))
            motion_codes[index].append(layout.ids_to_motion_codes(row[-1 - layout.motion_tokens_per_clip : -1]))
    return VideoTokensOutput(
        sequences=rows,
        keyframe_codes=keyframe_codes,
        motion_codes=[torch.stack(codes) for codes in motion_codes],
    )


class VideoLaVITGenerator:
    """The generation checkpoint, its processor and the detokenizer, used together.

    Args:
        model ([`VideoLaVITForConditionalGeneration`]): a generation checkpoint (`keyframe_input="codes"`).
        processor ([`VideoLaVITProcessor`]): its processor.
        detokenizer ([`VideoLaVITDetokenizerPipeline`]): the detokenizer pipeline.

    Example:
        ```python
        generator = VideoLaVITGenerator.from_pretrained("converted/generation", "converted/detokenizer",
                                                        dtype=torch.bfloat16, device="cuda")
        video = generator.text_to_video("a boat sails across a calm lake", num_clips=2, seed=0)
        generator.save_video(video.frames[0], "boat.mp4")
        ```
    """

    def __init__(
        self,
        model: VideoLaVITForConditionalGeneration,
        processor: VideoLaVITProcessor,
        detokenizer: VideoLaVITDetokenizerPipeline,
    ):
        if model.config.keyframe_input != "codes":
            raise InvalidInputError(
                "generation needs the generation checkpoint (keyframes as codes, converted from language_model/); "
                "this one reads keyframes as continuous features"
            )
        processor.check_layout(model)
        self.model, self.processor, self.detokenizer = model, processor, detokenizer

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | os.PathLike,
        detokenizer_dir: str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> VideoLaVITGenerator:
        """Load the three parts from converted folders onto `device` in `dtype`.

        `model_dir` is the generation checkpoint and `detokenizer_dir` the detokenizer pipeline; or, alone,
        `model_dir` is the folder `video-lavit convert release` wrote, and its `generation/` and
        `video_detokenizer/` are loaded (one call for the whole text-to-video stack).
        """
        if detokenizer_dir is None:
            root = os.fspath(model_dir)
            model_dir, detokenizer_dir = os.path.join(root, "generation"), os.path.join(root, "video_detokenizer")
            if not (os.path.isdir(model_dir) and os.path.isdir(detokenizer_dir)):
                raise InvalidInputError(
                    f"{root}: holds no generation/ and video_detokenizer/ (the layout `video-lavit convert release` "
                    "writes); pass the generation checkpoint and the detokenizer folder."
                )
        model = VideoLaVITForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        processor = VideoLaVITProcessor.from_pretrained(model_dir)
        if dtype == torch.float16:
            # fp16 overflows the VAEs (their configs ask for an upcast): keep them in fp32.
            dtype = {"default": torch.float16, "vae": torch.float32, "keyframe_vae": torch.float32}
        detokenizer = VideoLaVITDetokenizerPipeline.from_pretrained(detokenizer_dir, dtype=dtype).to(device)
        return cls(model, processor, detokenizer)

    def _prompts(self, prompts: str | Sequence[str]) -> dict:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        inputs = self.processor(text=prompts, add_special_tokens=False)
        return {key: value.to(self.model.device) for key, value in inputs.items()}

    def _image_codes(self, images: Sequence[PIL.Image.Image]) -> list[torch.Tensor]:
        pixels = torch.stack([self.processor.video_processor.preprocess_keyframe(image) for image in images])
        return self.model.tokenize_keyframes(pixels).split_codes()

    @staticmethod
    def _seed(seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        torch.manual_seed(seed)  # the language model samples with the global generator, as transformers does
        return torch.Generator().manual_seed(seed)

    def text_to_video(
        self,
        prompts: str | Sequence[str],
        num_clips: int = 1,
        seed: int | None = None,
        keyframe_guidance_scale: float = 4.0,
        motion_guidance_scale: float = 7.0,
        **detokenizer_kwargs,
    ) -> VideoLaVITDetokenizerPipelineOutput:
        """Prompts -> videos of `num_clips` clips of 24 frames (`detokenizer_kwargs` go to the pipeline)."""
        generator = self._seed(seed)
        tokens = generate_video_tokens(
            self.model,
            **self._prompts(prompts),
            num_clips=num_clips,
            keyframe_guidance_scale=keyframe_guidance_scale,
            motion_guidance_scale=motion_guidance_scale,
            keyframe_kwargs=KEYFRAME_SAMPLING,
            motion_kwargs={"do_sample": False},
        )
        return self.detokenizer(
            keyframe_codes=tokens.keyframe_codes,
            motion_codes=torch.stack(tokens.motion_codes),
            generator=generator,
            **detokenizer_kwargs,
        )

    def image_to_video(
        self,
        images: PIL.Image.Image | Sequence[PIL.Image.Image],
        prompts: str | Sequence[str] = "",
        seed: int | None = None,
        motion_guidance_scale: float = 7.0,
        **detokenizer_kwargs,
    ) -> VideoLaVITDetokenizerPipelineOutput:
        """Images (with optional text) -> one clip each, the image as its keyframe; motion is sampled."""
        images = [images] if isinstance(images, PIL.Image.Image) else list(images)
        prompts = [prompts] * len(images) if isinstance(prompts, str) else list(prompts)
        generator = self._seed(seed)
        tokens = generate_video_tokens(
            self.model,
            **self._prompts(prompts),
            image_codes=self._image_codes(images),
            motion_guidance_scale=motion_guidance_scale,
            motion_kwargs=KEYFRAME_SAMPLING,
        )
        return self.detokenizer(
            image=images, motion_codes=torch.stack(tokens.motion_codes), generator=generator, **detokenizer_kwargs
        )

    def text_to_image(
        self,
        prompts: str | Sequence[str],
        seed: int | None = None,
        guidance_scale: float = 4.0,
        height: int = 512,
        width: int = 512,
        **decode_kwargs,
    ) -> list[PIL.Image.Image]:
        """Prompts -> images: keyframe tokens, rendered by the keyframe decoder."""
        generator = self._seed(seed)
        sequences = self.model.generate_keyframe_tokens(
            **self._prompts(prompts), guidance_scale=guidance_scale, **KEYFRAME_SAMPLING
        )
        layout = self.model.token_layout
        codes = [layout.ids_to_visual_codes(row[layout.is_visual_code(row)]) for row in sequences]
        keyframes = self.detokenizer.keyframe_pipeline
        return keyframes(keyframe_codes=codes, height=height, width=width, generator=generator, **decode_kwargs).images

    def reconstruct_video(
        self,
        video,
        max_clips: int | None = None,
        seed: int | None = None,
        **detokenizer_kwargs,
    ) -> VideoLaVITDetokenizerPipelineOutput:
        """A video (path, bytes, ...) -> its keyframe and motion tokens -> frames again.

        `max_clips` defaults to the processor's setting (16 clips).
        """
        options = {} if max_clips is None else {"max_clips": max_clips}
        clips = self.processor.video_processor([video], **options)
        keyframe_codes = self.model.tokenize_keyframes(clips["keyframe_pixel_values"]).split_codes()
        motion_codes = self.model.model.get_motion_codes(clips["motion_vectors"])
        return self.detokenizer(
            keyframe_codes=[keyframe_codes],
            motion_codes=motion_codes[None],
            generator=self._seed(seed),
            **detokenizer_kwargs,
        )

    @staticmethod
    def save_video(frames, path: str | os.PathLike, fps: int = 6) -> str:
        """Write one video's frames (PIL images or arrays in [0, 1]) with diffusers' `export_to_video`."""
        return export_to_video(list(frames), os.fspath(path), fps=fps)


__all__ = ["VideoLaVITGenerator", "VideoTokensOutput", "generate_video_tokens", "pad_left"]
