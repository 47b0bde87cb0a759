"""`VideoLaVITDetokenizerPipeline`: keyframe and motion tokens -> video frames (the paper's video detokenizer).

Per clip of 24 frames (the reference's `VideoDetokenizer`):

1. Keyframe: either given (an image, for image-to-video) or rendered from its keyframe codes by the keyframe
   components (`VideoLaVITKeyframePipeline`).
2. Motion: decoded from its 135 motion codes by the motion tokenizer (or taken from motion grids, to reconstruct a
   video from its own motion) at the latent size, divided by the motion scale; the motion condition encoder turns
   it into per-frame tokens.
3. Video: the motion-conditioned SVD UNet denoises 24 latents from noise; its input per frame is the noisy latent,
   the keyframe's VAE latent (noise-augmented, unscaled, zeros in the unconditional branch) and the motion (zeros in
   the unconditional branch); guidance grows linearly from `min_guidance_scale` on the first frame to
   `max_guidance_scale` on the last; `added_time_ids = [fps, motion_bucket_id, noise_aug_strength]`.
4. The next clip's keyframe starts from the previous clip's last frame, VAE-encoded and forward-noised to step
   `int(noise_constraint_strength * steps)` of the keyframe schedule (the reference's noise constraint).

Random numbers are drawn in the reference's order (keyframe latents, then the keyframe's noise augmentation, then the
video latents, clip by clip) with `randn_tensor(generator=...)`. The denoising loop is `denoising.denoise`, shared
with the keyframe pipeline. Sizes (frames per clip, motion codes per clip, the motion grid, the motion scale) are
read from the components' configurations. No registered component is changed by a call (the reference upcasts an
fp16 VAE in place; load the VAEs in bf16 or fp32 instead).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder, DiffusionPipeline, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import BaseOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from ..checks import check_finite
from ..errors import InvalidInputError
from ..loading import check_local_folder, check_pipeline_weights
from ..media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from ..media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer, resize_motion
from ..media_tokenizers.modeling_visual_token_decoder import VideoLaVITVisualTokenDecoder
from .denoising import DenoisingStateMixin, denoise
from .motion_condition_encoder import VideoLaVITMotionConditionEncoder
from .pipeline_keyframe import (
    VideoLaVITKeyframePipeline,
    check_callback_inputs,
    check_count,
    check_output_type,
    check_sizes,
)
from .unet_video_lavit import VideoLaVITVideoUNet

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | Sequence[PIL.Image.Image]


@dataclass
class VideoLaVITDetokenizerPipelineOutput(BaseOutput):
    """Output of `VideoLaVITDetokenizerPipeline`.

    Attributes:
        frames: per video, its clips' frames one after the other: a list of lists of PIL images (`"pil"`), an array
            `[batch, clips * 24, height, width, 3]` (`"np"`), a tensor `[batch, clips * 24, 3, height, width]`
            (`"pt"`), or the final latents `[batch, clips, 24, 4, height / 8, width / 8]` (`"latent"`).
        keyframes: per video, the keyframe of each clip (PIL images, or as `frames` for `"np"` / `"pt"`; None for
            `"latent"`).
    """

    frames: list | np.ndarray | torch.Tensor
    keyframes: list | np.ndarray | torch.Tensor | None = None


class VideoLaVITDetokenizerPipeline(DenoisingStateMixin, DiffusionPipeline):
    r"""Video-LaVIT's detokenizer: keyframe codes (or an image) and motion codes (or motion grids) -> frames.

    Components:
        unet ([`VideoLaVITVideoUNet`]): the motion-conditioned video UNet.
        motion_encoder ([`VideoLaVITMotionConditionEncoder`]): motion -> per-frame condition tokens.
        vae ([`AutoencoderKLTemporalDecoder`]): the video VAE.
        scheduler ([`EulerDiscreteScheduler`]): the video scheduler.
        motion_tokenizer ([`VideoLaVITMotionTokenizer`], *optional*): decodes motion codes.
        token_decoder ([`VideoLaVITVisualTokenDecoder`], *optional*): keyframe codes -> UNet conditioning.
        keyframe_unet ([`UNet2DConditionModel`], *optional*): the SDXL-architecture keyframe UNet.
        keyframe_vae ([`AutoencoderKL`], *optional*): its VAE.
        keyframe_scheduler (*optional*): its scheduler.

    The keyframe components are needed only to render keyframes from codes; the motion tokenizer only for motion
    codes. Loading: `VideoLaVITDetokenizerPipeline.from_pretrained(folder)` after `import video_lavit`.
    """

    model_cpu_offload_seq = "token_decoder->keyframe_unet->keyframe_vae->motion_tokenizer->motion_encoder->unet->vae"
    _optional_components = ["motion_tokenizer", "token_decoder", "keyframe_unet", "keyframe_vae", "keyframe_scheduler"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        unet: VideoLaVITVideoUNet,
        motion_encoder: VideoLaVITMotionConditionEncoder,
        vae: AutoencoderKLTemporalDecoder,
        scheduler: KarrasDiffusionSchedulers,
        motion_tokenizer: VideoLaVITMotionTokenizer | None = None,
        token_decoder: VideoLaVITVisualTokenDecoder | None = None,
        keyframe_unet: UNet2DConditionModel | None = None,
        keyframe_vae: AutoencoderKL | None = None,
        keyframe_scheduler: KarrasDiffusionSchedulers | None = None,
    ):
        super().__init__()
        self.register_modules(
            unet=unet,
            motion_encoder=motion_encoder,
            vae=vae,
            scheduler=scheduler,
            motion_tokenizer=motion_tokenizer,
            token_decoder=token_decoder,
            keyframe_unet=keyframe_unet,
            keyframe_vae=keyframe_vae,
            keyframe_scheduler=keyframe_scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor, resample="bicubic")
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, resample="bicubic")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`DiffusionPipeline.from_pretrained` that refuses a folder with missing, unexpected or mis-shaped weights.

        Our components check themselves when they load; diffusers' VAEs and keyframe UNet would initialise missing
        weights afresh, so their folders' safetensors files are checked against them here.
        """
        folder = os.fspath(pretrained_model_name_or_path)
        check_local_folder(folder, "detokenizer pipeline")
        return check_pipeline_weights(super().from_pretrained(folder, **kwargs), folder)

    # Sizes, from the components' configurations

    @property
    def _motion_config(self) -> VideoLaVITMotionTokenizerConfig:
        tokenizer = self.motion_tokenizer
        return tokenizer.config if tokenizer is not None else VideoLaVITMotionTokenizerConfig()

    @property
    def num_frames(self) -> int:
        """Frames per clip (24)."""
        return self._motion_config.num_frames

    @property
    def motion_grid_shape(self) -> tuple[int, int, int, int]:
        """One clip's motion grid `(2, 24, 20, 36)`."""
        config = self._motion_config
        return config.in_channels, config.num_frames, config.grid_height, config.grid_width

    @property
    def motion_tokens_per_clip(self) -> int:
        """Motion codes per clip (135)."""
        return self._motion_config.num_tokens_per_clip

    @property
    def keyframe_pipeline(self) -> VideoLaVITKeyframePipeline:
        """The keyframe (text-to-image) pipeline over this pipeline's keyframe components."""
        if self._missing_keyframe_components():
            raise InvalidInputError(
                "rendering keyframes from codes needs the token_decoder, keyframe_unet, keyframe_vae and "
                "keyframe_scheduler components"
            )
        pipeline = VideoLaVITKeyframePipeline(
            token_decoder=self.token_decoder,
            keyframe_unet=self.keyframe_unet,
            keyframe_vae=self.keyframe_vae,
            keyframe_scheduler=self.keyframe_scheduler,
        )
        pipeline.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipeline

    def _missing_keyframe_components(self) -> bool:
        parts = (self.token_decoder, self.keyframe_unet, self.keyframe_vae, self.keyframe_scheduler)
        return any(part is None for part in parts)

    # 0. Inputs

    def check_inputs(
        self,
        *,
        image,
        keyframe_codes,
        motion_codes,
        motion,
        height: int,
        width: int,
        keyframe_height: int,
        keyframe_width: int,
        noise_constraint_strength: float,
        callback_on_step_end_tensor_inputs,
    ) -> tuple[int, int]:
        """Validate the inputs; returns (batch size, clips)."""
        check_sizes(height=height, width=width, keyframe_height=keyframe_height, keyframe_width=keyframe_width)
        if (motion_codes is None) == (motion is None):
            raise InvalidInputError("pass exactly one of motion_codes (motion tokens) and motion (motion grids)")
        if motion_codes is not None and not isinstance(motion_codes, torch.Tensor):
            raise InvalidInputError(f"motion_codes must be a LongTensor, got {type(motion_codes).__name__}")
        if motion is not None and not isinstance(motion, torch.Tensor):
            raise InvalidInputError(f"motion must be a tensor of motion grids, got {type(motion).__name__}")
        count = self.motion_tokens_per_clip
        if motion_codes is not None:
            if self.motion_tokenizer is None:
                raise InvalidInputError("motion_codes need the motion_tokenizer component; pass motion grids instead")
            if motion_codes.ndim not in (2, 3) or motion_codes.shape[-1] != count:
                raise InvalidInputError(
                    f"motion_codes must have shape [batch, {count}] or [batch, clips, {count}], "
                    f"got {tuple(motion_codes.shape)}"
                )
            batch, clips = motion_codes.shape[0], (motion_codes.shape[1] if motion_codes.ndim == 3 else 1)
        else:
            grid = self.motion_grid_shape
            if motion.ndim not in (5, 6) or tuple(motion.shape[-4:]) != grid:
                raise InvalidInputError(
                    f"motion must have shape [batch, (clips,) {', '.join(map(str, grid))}], got {tuple(motion.shape)}"
                )
            check_finite(motion, "motion")
            batch, clips = motion.shape[0], (motion.shape[1] if motion.ndim == 6 else 1)
        if image is None and keyframe_codes is None:
            raise InvalidInputError(
                "pass image (the first keyframe) or keyframe_codes (codes of every clip's keyframe)"
            )
        if keyframe_codes is not None:
            if len(keyframe_codes) != batch or any(len(video) != clips for video in keyframe_codes):
                raise InvalidInputError(f"keyframe_codes must hold {clips} code tensors for each of {batch} videos")
            self.keyframe_pipeline.check_inputs(
                [codes for video in keyframe_codes for codes in video], keyframe_height, keyframe_width, None
            )
        elif clips > 1:
            raise InvalidInputError("an image gives the first keyframe only; more clips need keyframe_codes")
        if image is not None:
            if isinstance(image, (list, tuple)):
                images = len(image)
            elif isinstance(image, PIL.Image.Image):
                images = 1
            elif isinstance(image, (np.ndarray, torch.Tensor)):
                images = 1 if image.ndim == 3 else image.shape[0]
                if image.dtype not in (np.uint8, torch.uint8):
                    check_finite(
                        torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image), "image"
                    )
            else:
                raise InvalidInputError(
                    f"image must be a PIL image, a list of them, an array or a tensor, got {type(image)}"
                )
            if images != batch:
                raise InvalidInputError(f"got {images} images for {batch} videos")
        if not 0.0 <= noise_constraint_strength < 1.0:
            raise InvalidInputError(f"noise_constraint_strength must be in [0, 1), got {noise_constraint_strength}")
        check_callback_inputs(self, callback_on_step_end_tensor_inputs)
        return batch, clips

    # 2. Motion

    def motion_at_latent_size(
        self, *, motion_codes: torch.Tensor | None, motion: torch.Tensor | None, height: int, width: int
    ) -> torch.Tensor:
        """One clip's motion `[batch, 2, 24, height / 8, width / 8]`, divided by the tokenizer's motion scale."""
        latent_height, latent_width = height // self.vae_scale_factor, width // self.vae_scale_factor
        if motion_codes is not None:
            # Not a `forward` call: trigger the model-offload hook (if any) so the tokenizer is on the device.
            decode = apply_forward_hook(VideoLaVITMotionTokenizer.decode_to_latent_size)
            return decode(self.motion_tokenizer, motion_codes, latent_height, latent_width)
        return resize_motion(motion.float(), latent_height, latent_width) / self._motion_config.motion_scale

    # 3. Video

    def encode_keyframe_latents(
        self, keyframes: torch.Tensor, *, noise_aug_strength: float, generator, do_classifier_free_guidance: bool
    ) -> torch.Tensor:
        """Keyframes `[batch, 3, H, W]` in [-1, 1] -> noise-augmented, unscaled VAE latents (zeros first)."""
        noise = randn_tensor(keyframes.shape, generator=generator, device=keyframes.device, dtype=keyframes.dtype)
        augmented = (keyframes + noise_aug_strength * noise).to(self.vae.dtype)
        latents = self.vae.encode(augmented).latent_dist.mode()
        return torch.cat([torch.zeros_like(latents), latents]) if do_classifier_free_guidance else latents

    def prepare_latents(
        self,
        *,
        batch: int,
        num_frames: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial video latents `[batch, frames, 4, height / 8, width / 8]` scaled by the scheduler's sigma."""
        channels = self.unet.config.out_channels
        shape = (batch, num_frames, channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InvalidInputError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        return latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma

    def decode_latents(self, latents: torch.Tensor, *, decode_chunk_size: int) -> torch.Tensor:
        """`[batch, frames, 4, h, w]` -> frames `[batch, 3, frames, H, W]` (fp32), `decode_chunk_size` at a time."""
        batch, frames = latents.shape[:2]
        flat = (latents.flatten(0, 1) / self.vae.config.scaling_factor).to(self.vae.dtype)
        decoded = []
        for start in range(0, flat.shape[0], decode_chunk_size):
            chunk = flat[start : start + decode_chunk_size]
            decoded.append(self.vae.decode(chunk, num_frames=chunk.shape[0]).sample)
        pixels = torch.cat(decoded)
        # (b t) c h w -> b c t h w
        return pixels.reshape(batch, frames, *pixels.shape[1:]).permute(0, 2, 1, 3, 4).float()

    def denoise_clip(
        self,
        keyframes: torch.Tensor,
        motion: torch.Tensor,
        *,
        num_inference_steps: int,
        min_guidance_scale: float,
        max_guidance_scale: float,
        fps: int,
        motion_bucket_id: int,
        noise_aug_strength: float,
        generator,
        latents: torch.Tensor | None,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
    ) -> torch.Tensor:
        """One clip: keyframes `[batch, 3, H, W]` and latent-size motion -> denoised latents."""
        device = self._execution_device
        batch, _, frames, latent_height, latent_width = motion.shape
        height, width = latent_height * self.vae_scale_factor, latent_width * self.vae_scale_factor
        dtype = self.unet.dtype
        self._guidance_scale = max_guidance_scale
        do_guidance = self.do_classifier_free_guidance

        image_latents = self.encode_keyframe_latents(
            keyframes,
            noise_aug_strength=noise_aug_strength,
            generator=generator,
            do_classifier_free_guidance=do_guidance,
        )
        image_latents = image_latents.unsqueeze(1).repeat(1, frames, 1, 1, 1).to(dtype)
        motion_latents = motion.permute(0, 2, 1, 3, 4).to(dtype)  # b c t h w -> b t c h w
        conditions = self.motion_encoder(motion.to(self.motion_encoder.dtype)).sample.to(dtype)
        if do_guidance:
            motion_latents = torch.cat([torch.zeros_like(motion_latents), motion_latents])
            conditions = torch.cat([torch.zeros_like(conditions), conditions])
        time_ids = torch.tensor([[fps, motion_bucket_id, noise_aug_strength]], device=device, dtype=dtype)
        time_ids = time_ids.repeat(conditions.shape[0], 1)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(
            batch=batch,
            num_frames=frames,
            height=height,
            width=width,
            dtype=dtype,
            device=device,
            generator=generator,
            latents=latents,
        )
        guidance = torch.linspace(min_guidance_scale, max_guidance_scale, frames, device=device, dtype=dtype)

        def predict_noise(model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            model_input = torch.cat([model_input, image_latents, motion_latents], dim=2)
            return self.unet(
                model_input, timestep, encoder_hidden_states=conditions, added_time_ids=time_ids, return_dict=False
            )[0]

        return denoise(
            self,
            latents=latents,
            timesteps=self.scheduler.timesteps,
            scheduler=self.scheduler,
            predict_noise=predict_noise,
            guidance_scale=guidance[None, :, None, None, None],  # per frame
            do_classifier_free_guidance=do_guidance,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )

    @torch.no_grad()
    def __call__(
        self,
        image: ImageInput | None = None,
        keyframe_codes: Sequence[Sequence[torch.Tensor]] | None = None,
        motion_codes: torch.Tensor | None = None,
        motion: torch.Tensor | None = None,
        height: int = 320,
        width: int = 512,
        num_inference_steps: int = 25,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 4.0,
        fps: int = 6,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int = 8,
        num_videos_per_prompt: int = 1,
        keyframe_height: int | None = None,
        keyframe_width: int | None = None,
        keyframe_num_inference_steps: int = 50,
        keyframe_guidance_scale: float = 3.0,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        noise_constraint_strength: float = 0.85,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> VideoLaVITDetokenizerPipelineOutput | tuple:
        r"""Render videos of one or more 24-frame clips.

        Args:
            image (PIL image, list of PIL images, array or tensor `[batch, 3, H, W]` in [0, 1]): the first clip's
                keyframe (image-to-video, or reconstruction from a known keyframe); resized to `height` x `width`.
            keyframe_codes (list of lists of 1-D `torch.LongTensor`): per video, per clip, the keyframe's codes
                (1..256 codes in [0, 16384)); rendered by the keyframe components.
            motion_codes (`torch.LongTensor` `[batch, 135]` or `[batch, clips, 135]`): motion codes per clip.
            motion (`torch.Tensor` `[batch, (clips,) 2, 24, 20, 36]`): motion grids from `VideoLaVITVideoProcessor`
                instead of codes (video reconstruction without the motion tokenizer's quantisation).
            height, width (`int`): video size, multiples of 64.
            num_inference_steps (`int`): video denoising steps (25).
            min_guidance_scale, max_guidance_scale (`float`): guidance of the first and last frame (1.0 -> 4.0).
            fps, motion_bucket_id, noise_aug_strength: the UNet's added time ids (6, 127, 0.02); the noise
                augmentation of the keyframe latent uses `noise_aug_strength` too.
            decode_chunk_size (`int`): frames per VAE decoding call (8; lower saves memory).
            num_videos_per_prompt (`int`): videos per input (each with its own noise).
            keyframe_height, keyframe_width (`int`): size keyframes are rendered at (default: the video size); they
                are resized (bicubic) to the video size.
            keyframe_num_inference_steps, keyframe_guidance_scale: keyframe denoising steps (50) and guidance (3.0).
            original_size, crops_coords_top_left: SDXL size conditioning of the keyframe UNet.
            noise_constraint_strength (`float`): later clips' keyframes start from the previous clip's last frame
                noised to this fraction of the keyframe schedule (0.85).
            generator (`torch.Generator`): makes the call reproducible.
            latents (`torch.Tensor` `[batch, 24, 4, height / 8, width / 8]`): the first clip's initial video noise.
            output_type (`str`): `"pil"`, `"np"`, `"pt"` or `"latent"`.
            callback_on_step_end (`Callable`): `callback(pipeline, step, timestep, callback_kwargs)` after every
                keyframe and video denoising step; may return `{"latents": ...}` to replace them.
            callback_on_step_end_tensor_inputs (`list[str]`): tensors passed to the callback (`["latents"]`).

        Returns:
            [`VideoLaVITDetokenizerPipelineOutput`] (or `(frames, keyframes)` with `return_dict=False`).
        """
        keyframe_height = keyframe_height or height
        keyframe_width = keyframe_width or width
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]

        # 0. Check the inputs, repeat them per video
        batch, clips = self.check_inputs(
            image=image,
            keyframe_codes=keyframe_codes,
            motion_codes=motion_codes,
            motion=motion,
            height=height,
            width=width,
            keyframe_height=keyframe_height,
            keyframe_width=keyframe_width,
            noise_constraint_strength=noise_constraint_strength,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        check_count("num_videos_per_prompt", num_videos_per_prompt)
        check_output_type(output_type, ("pil", "np", "pt", "latent"))
        device = self._execution_device
        original_size = original_size or (keyframe_height, keyframe_width)
        if motion_codes is not None and motion_codes.ndim == 2:
            motion_codes = motion_codes[:, None]
        if motion is not None and motion.ndim == 5:
            motion = motion[:, None]
        first_keyframes = None
        if image is not None:
            first_keyframes = self.image_processor.preprocess(image, height=height, width=width).to(device)
        if num_videos_per_prompt > 1:
            repeat = num_videos_per_prompt
            motion_codes = motion_codes.repeat_interleave(repeat, 0) if motion_codes is not None else None
            motion = motion.repeat_interleave(repeat, 0) if motion is not None else None
            if keyframe_codes is not None:
                keyframe_codes = [video for video in keyframe_codes for _ in range(repeat)]
            if first_keyframes is not None:
                first_keyframes = first_keyframes.repeat_interleave(repeat, 0)
        keyframe_pipeline = self.keyframe_pipeline if keyframe_codes is not None else None

        all_latents, all_frames, all_keyframes, previous_frames = [], [], [], None
        for clip in range(clips):
            # 1. The clip's keyframe, [batch, 3, height, width] in [-1, 1]
            if clip == 0 and first_keyframes is not None:
                keyframes = first_keyframes
            else:
                keyframes = keyframe_pipeline.render(
                    [video[clip] for video in keyframe_codes],
                    height=keyframe_height,
                    width=keyframe_width,
                    num_inference_steps=keyframe_num_inference_steps,
                    guidance_scale=keyframe_guidance_scale,
                    original_size=original_size,
                    crops_coords_top_left=crops_coords_top_left,
                    generator=generator,
                    start_image=previous_frames,
                    noise_constraint_strength=noise_constraint_strength,
                    callback_on_step_end=callback_on_step_end,
                    callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                    caller=self,
                )
                # As the reference, the rendered keyframe becomes an 8-bit picture (resized to the video size if
                # needed) before the video UNet sees it.
                keyframe_images = self.image_processor.postprocess(keyframes, output_type="pil")
                keyframes = self.image_processor.preprocess(keyframe_images, height=height, width=width).to(device)
            all_keyframes.append(keyframes.float())

            # 2. The clip's motion at latent size
            clip_motion = self.motion_at_latent_size(
                motion_codes=motion_codes[:, clip].to(device) if motion_codes is not None else None,
                motion=motion[:, clip].to(device) if motion is not None else None,
                height=height,
                width=width,
            )

            # 3. The clip's frames
            clip_latents = self.denoise_clip(
                keyframes,
                clip_motion,
                num_inference_steps=num_inference_steps,
                min_guidance_scale=min_guidance_scale,
                max_guidance_scale=max_guidance_scale,
                fps=fps,
                motion_bucket_id=motion_bucket_id,
                noise_aug_strength=noise_aug_strength,
                generator=generator,
                latents=latents if clip == 0 else None,
                callback_on_step_end=callback_on_step_end,
                callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            )
            all_latents.append(clip_latents)
            if output_type == "latent" and clip == clips - 1:
                break
            frames = self.decode_latents(clip_latents, decode_chunk_size=decode_chunk_size)
            all_frames.append(frames)

            # 4. The next keyframe starts from this clip's last frame, as a picture (the reference's way)
            if clip < clips - 1:
                last = (frames[:, :, -1] / 2 + 0.5).clamp(0, 1)
                previous_frames = self.image_processor.numpy_to_pil(last.permute(0, 2, 3, 1).cpu().numpy())
                if (height, width) != (keyframe_height, keyframe_width):
                    previous_frames = [
                        frame.resize((keyframe_width, keyframe_height), PIL.Image.BICUBIC) for frame in previous_frames
                    ]

        # 5. Post-process
        self.maybe_free_model_hooks()
        if output_type == "latent":
            frames, keyframes = torch.stack(all_latents, dim=1), None
        else:
            video = torch.cat(all_frames, dim=2)  # b c (clips t) h w
            frames = self.video_processor.postprocess_video(video=video, output_type=output_type)
            stacked = torch.stack(all_keyframes, dim=2)  # b c clips h w
            keyframes = self.video_processor.postprocess_video(video=stacked, output_type=output_type)
        if not return_dict:
            return frames, keyframes
        return VideoLaVITDetokenizerPipelineOutput(frames=frames, keyframes=keyframes)


__all__ = ["VideoLaVITDetokenizerPipeline", "VideoLaVITDetokenizerPipelineOutput"]
