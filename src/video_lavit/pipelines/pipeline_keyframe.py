"""`VideoLaVITKeyframePipeline`: keyframe codes -> images (Video-LaVIT's text-to-image, and every clip's keyframe).

The visual token decoder turns an image's keyframe codes into SDXL-style `prompt_embeds` / `pooled_prompt_embeds`,
and an SDXL-architecture UNet denoises a latent with classifier-free guidance against all-zero embeddings, which the
keyframe VAE decodes (the reference's `image_decoding`). The video detokenizer (`VideoLaVITDetokenizerPipeline`)
renders each clip's keyframe through this pipeline; from the second clip on, the keyframe starts from the previous
clip's last frame, VAE-encoded and forward-noised part of the way (the reference's noise constraint).

Random numbers are drawn in the reference's order with `randn_tensor(generator=...)`; the denoising arithmetic is
the scheduler's (`denoising.denoise`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils.torch_utils import randn_tensor

from ..errors import InvalidInputError
from ..loading import check_local_folder, check_pipeline_weights
from ..media_tokenizers.modeling_visual_token_decoder import VideoLaVITVisualTokenDecoder
from .denoising import DenoisingStateMixin, denoise


def check_output_type(output_type: str, allowed: tuple[str, ...]) -> None:
    if output_type not in allowed:
        raise InvalidInputError(f"output_type must be one of {', '.join(map(repr, allowed))}, got {output_type!r}")


def check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 64:
            raise InvalidInputError(f"{name} must be a positive multiple of 64, got {value!r}")


def check_callback_inputs(pipeline, names: list[str] | None) -> None:
    unknown = set(names or []) - set(pipeline._callback_tensor_inputs)
    if unknown:
        raise InvalidInputError(f"callback_on_step_end_tensor_inputs may name {pipeline._callback_tensor_inputs}")


def check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")


class VideoLaVITKeyframePipeline(DenoisingStateMixin, DiffusionPipeline):
    r"""Keyframe codes -> images.

    Components:
        token_decoder ([`VideoLaVITVisualTokenDecoder`]): keyframe codes -> the UNet's conditioning.
        keyframe_unet ([`UNet2DConditionModel`]): the SDXL-architecture UNet.
        keyframe_vae ([`AutoencoderKL`]): its VAE.
        keyframe_scheduler: its scheduler.

    The component names are those of the detokenizer folder, so `VideoLaVITKeyframePipeline.from_pretrained(
    "converted/detokenizer")` loads just these four; `VideoLaVITDetokenizerPipeline.keyframe_pipeline` shares them
    with a loaded detokenizer.
    """

    model_cpu_offload_seq = "token_decoder->keyframe_unet->keyframe_vae"
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        token_decoder: VideoLaVITVisualTokenDecoder,
        keyframe_unet: UNet2DConditionModel,
        keyframe_vae: AutoencoderKL,
        keyframe_scheduler: KarrasDiffusionSchedulers,
    ):
        super().__init__()
        self.register_modules(
            token_decoder=token_decoder,
            keyframe_unet=keyframe_unet,
            keyframe_vae=keyframe_vae,
            keyframe_scheduler=keyframe_scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.keyframe_vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, resample="bicubic")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`DiffusionPipeline.from_pretrained` that refuses a folder with missing, unexpected or mis-shaped weights."""
        folder = os.fspath(pretrained_model_name_or_path)
        check_local_folder(folder, "keyframe pipeline")
        return check_pipeline_weights(super().from_pretrained(folder, **kwargs), folder)

    # 0. Inputs

    def check_inputs(self, keyframe_codes, height: int, width: int, callback_on_step_end_tensor_inputs) -> int:
        """Validate the inputs; returns the number of images."""
        check_sizes(height=height, width=width)
        if (
            not isinstance(keyframe_codes, (list, tuple))
            or not keyframe_codes
            or not all(isinstance(codes, (torch.Tensor, list, tuple)) for codes in keyframe_codes)
        ):
            raise InvalidInputError("keyframe_codes must be a non-empty list of 1-D code tensors, one per image")
        limit = self.token_decoder.config.codebook_size
        for codes in keyframe_codes:
            codes = torch.as_tensor(codes)
            if codes.ndim != 1 or codes.is_floating_point():
                raise InvalidInputError(f"each image's keyframe codes must be a 1-D integer tensor, got {codes.shape}")
            if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= limit):
                raise InvalidInputError(f"keyframe codes must lie in [0, {limit})")
        check_callback_inputs(self, callback_on_step_end_tensor_inputs)
        return len(keyframe_codes)

    # 1. Conditioning

    def encode_codes(
        self, keyframe_codes: Sequence[torch.Tensor], *, device: torch.device, do_classifier_free_guidance: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keyframe codes -> (`prompt_embeds`, `pooled_prompt_embeds`), all-zero (unconditional) ones first."""
        decoded = self.token_decoder([torch.as_tensor(row, device=device).long() for row in keyframe_codes])
        prompt_embeds, pooled = decoded.prompt_embeds, decoded.pooled_prompt_embeds
        if do_classifier_free_guidance:
            prompt_embeds = torch.cat([torch.zeros_like(prompt_embeds), prompt_embeds])
            pooled = torch.cat([torch.zeros_like(pooled), pooled])
        return prompt_embeds, pooled

    # 2. Latents

    def prepare_latents(
        self,
        *,
        batch: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator,
        start_image: list[PIL.Image.Image] | None = None,
        start_step: int = 0,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial latents: noise (or the given `latents`), or `start_image` VAE-encoded and noised to `start_step`."""
        channels = self.keyframe_unet.config.in_channels
        shape = (batch, channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        scheduler = self.keyframe_scheduler
        if start_image is None:
            if latents is None:
                latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
            elif tuple(latents.shape) != shape:
                raise InvalidInputError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
            return latents.to(device=device, dtype=dtype) * scheduler.init_noise_sigma
        pixels = self.image_processor.preprocess(start_image, height=height, width=width)
        pixels = pixels.to(device=device, dtype=self.keyframe_vae.dtype)
        encoded = self.keyframe_vae.encode(pixels).latent_dist.mode() * self.keyframe_vae.config.scaling_factor
        noise = randn_tensor(encoded.shape, generator=generator, device=device, dtype=encoded.dtype)
        timestep = scheduler.timesteps[start_step : start_step + 1].repeat(batch)
        noised = scheduler.add_noise(encoded, noise, timestep)
        # The reference scales the noised latents by the initial sigma as well.
        return (noised * scheduler.init_noise_sigma).to(dtype)

    # 3. Denoising and decoding

    def render(
        self,
        keyframe_codes: Sequence[torch.Tensor],
        *,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        original_size: tuple[int, int],
        crops_coords_top_left: tuple[int, int],
        generator,
        start_image: list[PIL.Image.Image] | None = None,
        noise_constraint_strength: float = 0.0,
        latents: torch.Tensor | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        return_latents: bool = False,
        caller=None,
    ) -> torch.Tensor:
        """Keyframe codes -> images `[batch, 3, height, width]` in [-1, 1] (or the denoised latents), for checked
        inputs. `caller` (the detokenizer pipeline, rendering a clip's keyframe) is the pipeline the callbacks and the
        progress bar see, with this stage's `guidance_scale` and `num_timesteps`."""
        device = self._execution_device
        self._guidance_scale = guidance_scale
        caller = caller if caller is not None else self
        caller._guidance_scale = guidance_scale
        prompt_embeds, pooled = self.encode_codes(
            keyframe_codes, device=device, do_classifier_free_guidance=self.do_classifier_free_guidance
        )
        dtype = self.keyframe_unet.dtype
        self.keyframe_scheduler.set_timesteps(num_inference_steps, device=device)
        start_step = 0 if start_image is None else int(noise_constraint_strength * num_inference_steps)
        latents = self.prepare_latents(
            batch=len(keyframe_codes),
            height=height,
            width=width,
            dtype=dtype,
            device=device,
            generator=generator,
            start_image=start_image,
            start_step=start_step,
            latents=latents,
        )
        time_ids = torch.tensor([[*original_size, *crops_coords_top_left, height, width]], device=device, dtype=dtype)
        added_conditions = {
            "text_embeds": pooled.to(dtype),
            "time_ids": time_ids.repeat(prompt_embeds.shape[0], 1),
        }

        def predict_noise(model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            return self.keyframe_unet(
                model_input,
                timestep,
                encoder_hidden_states=prompt_embeds.to(dtype),
                added_cond_kwargs=added_conditions,
                return_dict=False,
            )[0]

        latents = denoise(
            caller,
            latents=latents,
            timesteps=self.keyframe_scheduler.timesteps[start_step:],
            scheduler=self.keyframe_scheduler,
            predict_noise=predict_noise,
            guidance_scale=guidance_scale,
            do_classifier_free_guidance=self.do_classifier_free_guidance,
            step_generator=generator,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        if return_latents:
            return latents
        latents = latents.to(self.keyframe_vae.dtype) / self.keyframe_vae.config.scaling_factor
        return self.keyframe_vae.decode(latents, return_dict=False)[0].float().clamp(-1, 1)

    @torch.no_grad()
    def __call__(
        self,
        keyframe_codes: Sequence[torch.Tensor],
        height: int = 512,
        width: int = 512,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        num_images_per_prompt: int = 1,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ImagePipelineOutput | tuple:
        r"""Render one image per keyframe-code tensor.

        Args:
            keyframe_codes (list of 1-D `torch.LongTensor`): per image, its keyframe codes (1..256 codes), e.g. from
                `generate_keyframe_tokens`.
            height, width (`int`): image size, multiples of 64 (512).
            num_inference_steps (`int`): denoising steps (50, as the reference).
            guidance_scale (`float`): classifier-free guidance against all-zero conditioning (3.0; 1 disables it).
            num_images_per_prompt (`int`): images per code tensor (different noise each).
            original_size, crops_coords_top_left: SDXL size conditioning (default: the image size, (0, 0)).
            generator (`torch.Generator`): makes the call reproducible.
            latents (`torch.Tensor` `[images, 4, height / 8, width / 8]`): initial noise instead of drawing it.
            output_type (`str`): `"pil"`, `"np"`, `"pt"` (in [0, 1]) or `"latent"`.
            callback_on_step_end, callback_on_step_end_tensor_inputs: as diffusers' pipelines (`["latents"]`).

        Returns:
            `ImagePipelineOutput` with `images` (or `(images,)` with `return_dict=False`).
        """
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        # 0. Check the inputs
        self.check_inputs(keyframe_codes, height, width, callback_on_step_end_tensor_inputs)
        check_count("num_images_per_prompt", num_images_per_prompt)
        check_output_type(output_type, ("pil", "np", "pt", "latent"))
        codes = [row for row in keyframe_codes for _ in range(num_images_per_prompt)]
        # 1-3. Condition, draw, denoise and decode
        images = self.render(
            codes,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            original_size=original_size or (height, width),
            crops_coords_top_left=crops_coords_top_left,
            generator=generator,
            latents=latents,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            return_latents=output_type == "latent",
        )
        # 4. Post-process
        self.maybe_free_model_hooks()
        if output_type != "latent":
            images = self.image_processor.postprocess(images, output_type=output_type)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


__all__ = ["VideoLaVITKeyframePipeline"]
