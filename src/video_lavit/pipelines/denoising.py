"""The denoising loop shared by the keyframe and the video pipelines: guidance, scheduler steps, callbacks, progress.

Both of Video-LaVIT's diffusion stages run the loop of diffusers' SDXL and SVD pipelines: duplicate the latents for
classifier-free guidance, scale them for the scheduler, predict the noise, combine the unconditional and conditional
halves (`uncond + scale * (cond - uncond)`, where the video pipeline's scale is one value per frame), take the
scheduler's step, then give the latents to the step-end callback. Only the noise prediction differs between them,
and it comes in as a function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch


class DenoisingStateMixin:
    """The state diffusers' pipelines expose during a call: `guidance_scale`, `do_classifier_free_guidance` and
    `num_timesteps` (set by `denoise`)."""

    _guidance_scale: float = 1.0
    _num_timesteps: int = 0

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps


def denoise(
    pipeline,
    *,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler,
    predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    guidance_scale: float | torch.Tensor,
    do_classifier_free_guidance: bool,
    step_generator: torch.Generator | list[torch.Generator] | None = None,
    callback_on_step_end: Callable | None = None,
    callback_on_step_end_tensor_inputs: list[str] | None = None,
) -> torch.Tensor:
    """Run `scheduler` over `timesteps` from `latents`; returns the denoised latents.

    Args:
        pipeline (`DiffusionPipeline`): the calling pipeline (its progress bar, `num_timesteps`, and the callback's
            first argument).
        latents (`torch.Tensor`): the initial latents, already scaled for the scheduler.
        timesteps (`torch.Tensor`): the timesteps to run (a tail of the schedule when denoising starts part-way).
        predict_noise: `(scaled model input, timestep) -> noise prediction`; the model input holds the
            unconditional half first when `do_classifier_free_guidance`.
        guidance_scale (`float` or `torch.Tensor`): the guidance weight (a tensor broadcasts, e.g. per frame).
        step_generator (`torch.Generator`, *optional*): handed to `scheduler.step` (the keyframe stage does, as the
            reference; the video stage does not, so that its steps draw nothing from the caller's generator).
        callback_on_step_end: `callback(pipeline, step, timestep, tensors)` after each step; may return
            `{"latents": ...}` to replace them.
        callback_on_step_end_tensor_inputs (`list[str]`): the tensors given to the callback (`["latents"]`).
    """
    pipeline._num_timesteps = len(timesteps)
    # Only schedulers whose step draws noise take a generator (as diffusers' `prepare_extra_step_kwargs`).
    step_kwargs = {"generator": step_generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    with pipeline.progress_bar(total=len(timesteps)) as progress_bar:
        for step, timestep in enumerate(timesteps):
            model_input = torch.cat([latents] * 2) if do_classifier_free_guidance else latents
            model_input = scheduler.scale_model_input(model_input, timestep)
            noise_pred = predict_noise(model_input, timestep)
            if do_classifier_free_guidance:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = scheduler.step(noise_pred, timestep, latents, return_dict=False, **step_kwargs)[0]
            if callback_on_step_end is not None:
                tensors = {name: {"latents": latents}[name] for name in callback_on_step_end_tensor_inputs or []}
                latents = callback_on_step_end(pipeline, step, timestep, tensors).pop("latents", latents)
            progress_bar.update()
    return latents


__all__ = ["DenoisingStateMixin", "denoise"]
