"""Which parts of a Video-LaVIT model train: the one place that freezes parameters.

Models load with every parameter trainable, as transformers models do. The paper trains its parts in stages: the
keyframe tokenizer's ViT is never trained (it is EVA-CLIP's, run without gradients), and the language model's
stages 2 and 3 train the decoder with both tokenizers frozen. `freeze_for_training` applies that to a model before
training; the training code calls it, and nothing else sets `requires_grad`. Gradients that must never flow are cut
where the tensors are made (`torch.no_grad` around the ViT, the motion tokenizer and the keyframe codes).
"""

from __future__ import annotations

from torch import nn

from ..errors import InvalidInputError
from ..media_tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITModel


def freeze_for_training(model: nn.Module, train_keyframe_projection: bool = False) -> list[str]:
    """Freeze the parts of `model` that its training stage keeps fixed, in place.

    Args:
        model: a [`VideoLaVITForConditionalGeneration`] or [`VideoLaVITModel`] (the language-model stages: both
            tokenizers are frozen, the decoder and its head train), or a [`VideoLaVITVisualTokenizer`] (its ViT is
            frozen). A PEFT-wrapped model is unwrapped first.
        train_keyframe_projection (`bool`, *optional*, defaults to `False`): for the understanding checkpoint
            (`keyframe_input="features"`), keep the keyframe tokenizer's `language_projection` trainable; build the
            inputs with `processor(..., return_pixel_values=True)` so that the model computes the features (and
            their gradient) itself.

    Returns:
        The names of the frozen modules.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if isinstance(base, VideoLaVITForConditionalGeneration):
        base = base.model
    if isinstance(base, VideoLaVITModel):
        base.motion_tokenizer.requires_grad_(False)
        base.visual_tokenizer.requires_grad_(False)
        frozen = ["motion_tokenizer", "visual_tokenizer"]
        if train_keyframe_projection:
            if base.config.keyframe_input != "features":
                raise InvalidInputError("train_keyframe_projection needs a checkpoint with keyframe_input='features'")
            base.visual_tokenizer.language_projection.requires_grad_(True)
            frozen = ["motion_tokenizer", "visual_tokenizer (except language_projection)"]
        return frozen
    if isinstance(base, VideoLaVITVisualTokenizer):
        base.vision_model.requires_grad_(False)
        return ["vision_model"]
    raise InvalidInputError(
        f"freeze_for_training takes a Video-LaVIT language model or keyframe tokenizer, got {type(base).__name__}"
    )


__all__ = ["freeze_for_training"]
