"""PEFT LoRA on every Linear of every component: each adapter moves the component's output (its B matrix gets a
gradient, or, where the forward runs without gradients, perturbing it alone changes the output)."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from tiny_models import (
    spread_keep_scores,
    tiny_motion_tokenizer_config,
    tiny_video_lavit_config,
    tiny_visual_decoder_config,
    tiny_visual_tokenizer_config,
)

from video_lavit import (
    VideoLaVITForConditionalGeneration,
    VideoLaVITMotionConditionEncoder,
    VideoLaVITMotionTokenizer,
    VideoLaVITVisualTokenDecoder,
    VideoLaVITVisualTokenizer,
)


def motion_tokenizer():
    model = VideoLaVITMotionTokenizer(tiny_motion_tokenizer_config(blocks_per_stage=1))
    motion = torch.randn(1, 2, 24, 20, 36, generator=torch.Generator().manual_seed(0)) * 3
    indices = torch.arange(135).reshape(1, 135) % 16

    def outputs(peft_model):
        return peft_model.encode(motion).features, peft_model.decode(indices)

    return model, outputs, ()


def visual_tokenizer():
    model = VideoLaVITVisualTokenizer(tiny_visual_tokenizer_config())
    spread_keep_scores(model)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def outputs(peft_model):
        features = peft_model.encode_features(pixels)
        return features.features, features.token_log_probs, peft_model.get_image_embeddings(pixels)

    # The code head's output is seen only through the nearest code (discrete); the ViT runs without gradients, so
    # its adapters are checked by perturbing each one.
    return model, outputs, ("code_head",)


def visual_token_decoder():
    model = VideoLaVITVisualTokenDecoder(tiny_visual_decoder_config())
    indices = torch.tensor([[1, 2, 3, 4], [5, 6, 7, -1]])

    def outputs(peft_model):
        output = peft_model(indices)
        return output.prompt_embeds, output.pooled_prompt_embeds

    return model, outputs, ()


def motion_condition_encoder():
    model = VideoLaVITMotionConditionEncoder(
        out_channels=8, hidden_size=16, num_attention_heads=2, num_layers=1, grid_size=4
    )
    motion = torch.randn(1, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    return model, lambda peft_model: (peft_model(motion).sample,), ()


def language_model():
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config())
    spread_keep_scores(model.model.visual_tokenizer)
    layout = model.token_layout
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = model.tokenize_keyframes(pixels)
    count = int(tokens.token_counts[0])
    input_ids = torch.tensor([[1, 5, layout.image_start_id, *[layout.image_token_id] * count, layout.image_end_id, 9]])

    def outputs(peft_model):
        return (peft_model(input_ids=input_ids, keyframe_features=tokens.features).logits,)

    # The tokenizers inside are covered as components of their own above.
    return model, outputs, ("motion_tokenizer", "visual_tokenizer")


@pytest.mark.parametrize(
    "build", [motion_tokenizer, visual_tokenizer, visual_token_decoder, motion_condition_encoder, language_model]
)
def test_every_lora_adapter_changes_the_output(build):
    torch.manual_seed(0)
    model, outputs, discrete_only = build()
    model.eval()
    with torch.no_grad():
        base = outputs(model)
    linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    peft_model = get_peft_model(model, LoraConfig(target_modules="all-linear", r=2, lora_alpha=4))
    adapters = [(name, module) for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]
    assert adapters and len(adapters) >= len(linears) - 1  # every Linear but (for the LM) the output head
    generator = torch.Generator().manual_seed(1)
    checked = [(name, module) for name, module in adapters if not any(part in name for part in discrete_only)]
    unmoved = []
    if build is visual_tokenizer:
        # Perturb each adapter alone (the ViT runs without gradients).
        with torch.no_grad():
            for before, after in zip(base, outputs(peft_model)):  # LoRA B starts at zero: nothing changes yet
                torch.testing.assert_close(after, before)
            for name, module in checked:
                weight = module.lora_B["default"].weight
                weight.copy_(torch.randn(weight.shape, generator=generator))
                moved = any(
                    after.shape != before.shape or not torch.allclose(after, before)
                    for before, after in zip(base, outputs(peft_model))
                )
                weight.zero_()
                if not moved:
                    unmoved.append(name)
    else:
        # One backward pass: an adapter whose B matrix gets a gradient moves the output when B moves.
        loss = sum(
            (output.float() * torch.randn(output.shape, generator=generator)).sum() for output in outputs(peft_model)
        )
        loss.backward()
        unmoved = [
            name
            for name, module in checked
            if module.lora_B["default"].weight.grad is None or not module.lora_B["default"].weight.grad.abs().sum() > 0
        ]
    assert unmoved == []
