"""Parity of the converted keyframe tokenizer and token decoder with the reference on stored outputs.

tests/fixtures/reference/visual_tokenizer/ holds a tiny reference checkpoint in the released file layout
(`eva_vitg_psz14.bin`, `tokenizer_encoder.bin`, `highres_tokenizer_decoder.bin`: ViT width 64 with 2 blocks and
4 heads on 112 x 112 images in 7 x 7 patches, i.e. 256 tokens as in the real model; merger and decoder of 2 blocks;
codebook 64 x 8; random weights) and the reference's outputs on three random images; its README says how they
were made. The reference's Gumbel sampling was replaced by an argmax for the deterministic runs, and run as it is
(seed 1234) for the sampled ones.
"""

import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from video_lavit import (
    CheckpointConversionError,
    VideoLaVITVisualTokenDecoder,
    VideoLaVITVisualTokenizer,
    convert_visual_tokenizer,
)
from video_lavit.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "visual_tokenizer")
HEADS = dict(vision_num_attention_heads=4, num_attention_heads=4)


@pytest.fixture(scope="module")
def reference():
    return load_file(os.path.join(FIXTURES, "reference_io.safetensors"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    output = tmp_path_factory.mktemp("converted")
    convert_visual_tokenizer(FIXTURES, output, **HEADS)
    tokenizer = VideoLaVITVisualTokenizer.from_pretrained(output / "visual_tokenizer").eval()
    decoder = VideoLaVITVisualTokenDecoder.from_pretrained(output / "visual_token_decoder").eval()
    return tokenizer, decoder


def _concat(output, name):
    return torch.cat(output.split(name))


def assert_relative_close(actual, expected, tolerance=1e-4):
    error = (actual - expected).abs().max() / expected.abs().max()
    assert error <= tolerance, f"relative error {error:.2e}"


def test_keep_mask_features_and_codes_equal_the_reference(converted, reference):
    tokenizer, _ = converted
    pixels = reference["pixel_values"]
    with torch.no_grad():
        vision = tokenizer.get_vision_features(pixels)
        log_probs = tokenizer.token_predictor(vision)
        merged = tokenizer.token_merger(vision, tokenizer.select_tokens(log_probs))
        features = tokenizer.encode_features(pixels)
        tokens = tokenizer.tokenize(pixels)
    assert_relative_close(vision, reference["vit_features"])
    assert_relative_close(log_probs, reference["pred_score"])
    assert torch.equal(tokens.keep_mask, reference["keep_mask"].bool())
    assert torch.equal(features.keep_mask, reference["keep_mask"].bool())
    assert_relative_close(merged, reference["merged_features"])
    assert torch.equal(features.num_tokens, reference["token_nums"])
    assert_relative_close(_concat(features, "features"), reference["encode_features"])
    assert torch.equal(_concat(tokens, "indices"), reference["code_indices"])
    assert torch.equal(_concat(tokens, "quantized"), reference["quantized"])


def test_every_token_kept(converted, reference):
    tokenizer, decoder = converted
    pixels = reference["pixel_values"]
    with torch.no_grad():
        vision = tokenizer.get_vision_features(pixels)
        merged = tokenizer.token_merger(vision, torch.ones(3, 256))
        fc3 = tokenizer.token_predictor.fc3
        original_bias = fc3.bias.clone()
        fc3.bias.copy_(torch.tensor([50.0, -50.0]))
        try:
            tokens = tokenizer.tokenize(pixels)
        finally:
            fc3.bias.copy_(original_bias)
        decoded = decoder(tokens.indices)
    assert_relative_close(merged, reference["allkept_merged_features"])
    assert torch.equal(tokens.num_tokens, reference["allkept_token_nums"])
    assert torch.equal(tokens.indices.flatten(), reference["allkept_code_indices"])
    assert_relative_close(decoded.prompt_embeds, reference["allkept_prompt_embeds"])
    assert_relative_close(decoded.pooled_prompt_embeds, reference["allkept_pooled_prompt_embeds"])


def test_seeded_sampling_reproduces_the_reference(converted, reference):
    tokenizer, _ = converted
    pixels = reference["pixel_values"]
    with torch.no_grad():
        torch.manual_seed(1234)
        tokens = tokenizer.tokenize(pixels, selection="sample")
        torch.manual_seed(1234)
        features = tokenizer.encode_features(pixels, selection="sample")
    assert torch.equal(tokens.keep_mask, reference["sample_keep_mask"].bool())
    assert torch.equal(tokens.num_tokens, reference["sample_token_nums"])
    assert torch.equal(_concat(tokens, "indices"), reference["sample_code_indices"])
    assert torch.equal(features.num_tokens, reference["sample_encode_token_nums"])
    assert_relative_close(_concat(features, "features"), reference["sample_encode_features"])


def test_decoder_matches_the_reference(converted, reference):
    _, decoder = converted
    codes = torch.split(reference["code_indices"], reference["token_nums"].tolist())
    with torch.no_grad():
        decoded = decoder(list(codes))
    assert_relative_close(decoded.prompt_embeds, reference["prompt_embeds"])
    assert_relative_close(decoded.pooled_prompt_embeds, reference["pooled_prompt_embeds"])


def test_converted_folders_are_safetensors_only(tmp_path):
    convert_visual_tokenizer(FIXTURES, tmp_path, **HEADS)
    assert sorted(os.listdir(tmp_path)) == ["visual_token_decoder", "visual_tokenizer"]
    for folder in ("visual_tokenizer", "visual_token_decoder"):
        assert sorted(os.listdir(tmp_path / folder)) == ["config.json", "model.safetensors"]


def test_command_line(tmp_path, capsys):
    arguments = ["convert", "visual-tokenizer", "--checkpoint-dir", FIXTURES, "--output", str(tmp_path)]
    assert main([*arguments, "--vision-attention-heads", "4", "--num-attention-heads", "4"]) == 0
    assert "visual_token_decoder" in capsys.readouterr().out
    assert (tmp_path / "visual_tokenizer" / "model.safetensors").exists()
    # Without the head count, a ViT width that is not a multiple of EVA's 88 is refused with advice.
    assert main(arguments) == 1
    assert "vision_num_attention_heads" in capsys.readouterr().err


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointConversionError, match="no such folder"):
        convert_visual_tokenizer(tmp_path / "missing")
    folder = tmp_path / "visual_tokenizer"
    shutil.copytree(FIXTURES, folder)
    (folder / "highres_tokenizer_decoder.bin").unlink()
    with pytest.raises(CheckpointConversionError, match="highres_tokenizer_decoder.bin: no such checkpoint"):
        convert_visual_tokenizer(folder, **HEADS)
    shutil.copy(os.path.join(FIXTURES, "highres_tokenizer_decoder.bin"), folder)
    state = torch.load(folder / "tokenizer_encoder.bin", weights_only=True)
    state["causal_encoder.extra.weight"] = torch.zeros(1)
    del state["vit_proj.bias"]
    torch.save(state, folder / "tokenizer_encoder.bin")
    with pytest.raises(
        CheckpointConversionError, match="no rule maps.*causal_encoder.extra.weight.*missing.*language_projection.bias"
    ):
        convert_visual_tokenizer(folder, **HEADS)
