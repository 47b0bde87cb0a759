"""End to end: prompts and images -> tokens (`VideoLaVITForCausalLM`) -> frames (`VideoLaVITDetokenizerPipeline`).

`VideoLaVITGenerator` is the one user-facing entry point for text-to-video (any number of clips), image-to-video,
text-to-image and reconstructing a video from its own tokens; `save_video` writes frames with diffusers'
`export_to_video`. It follows the reference's `VideoLaVITGenerationRunner` (SPEC sections 4 and 5): text prompts
without BOS; keyframes sampled with guidance 4.0; motion with guidance 7.0, decoded greedily for text-to-video and
sampled for image-to-video; each clip prompted by the whole sequence so far.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import PIL.Image
import torch
from diffusers.utils import export_to_video

from ..errors import InvalidInputError
from ..modeling.modeling_video_lavit import VideoLaVITForCausalLM
from ..processing.processing_video_lavit import VideoLaVITProcessor
from .pipeline_video_lavit import VideoLaVITDetokenizerPipeline, VideoLaVITDetokenizerPipelineOutput

KEYFRAME_SAMPLING = {"do_sample": True, "top_k": 50, "top_p": 1.0}


class VideoLaVITGenerator:
    """The generation checkpoint, its processor and the detokenizer, used together.

    Args:
        model ([`VideoLaVITForCausalLM`]): a generation checkpoint (`keyframe_input="codes"`).
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
        self, model: VideoLaVITForCausalLM, processor: VideoLaVITProcessor, detokenizer: VideoLaVITDetokenizerPipeline
    ):
        if model.config.keyframe_input != "codes":
            raise InvalidInputError(
                "generation needs the generation checkpoint (keyframes as codes, converted from language_model/); "
                "this one reads keyframes as continuous features"
            )
        self.model, self.processor, self.detokenizer = model, processor, detokenizer

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | os.PathLike,
        detokenizer_dir: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> VideoLaVITGenerator:
        """Load the three parts from converted folders onto `device` in `dtype`."""
        model = VideoLaVITForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
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
        tokenizer = self.model.model.visual_tokenizer
        with torch.no_grad():
            tokens = tokenizer.tokenize(pixels.to(self.model.device), selection=self.model.config.keyframe_selection)
        return tokens.split("indices")

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
        tokens = self.model.generate_video_tokens(
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
        tokens = self.model.generate_video_tokens(
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
        return self.detokenizer.decode_keyframes(codes, height, width, generator=generator, **decode_kwargs)

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
        keyframes = clips["keyframe_pixel_values"].to(self.model.device)
        with torch.no_grad():
            keyframe_codes = self.model.model.visual_tokenizer.tokenize(
                keyframes, selection=self.model.config.keyframe_selection
            ).split("indices")
            motion_codes = self.model.model.motion_tokenizer.encode(clips["motion_vectors"].to(self.model.device))
        return self.detokenizer(
            keyframe_codes=[keyframe_codes],
            motion_codes=motion_codes.indices[None],
            generator=self._seed(seed),
            **detokenizer_kwargs,
        )

    @staticmethod
    def save_video(frames, path: str | os.PathLike, fps: int = 6) -> str:
        """Write one video's frames (PIL images or arrays in [0, 1]) with diffusers' `export_to_video`."""
        return export_to_video(list(frames), os.fspath(path), fps=fps)


__all__ = ["VideoLaVITGenerator"]
