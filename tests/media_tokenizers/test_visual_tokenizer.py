import os

import pytest
import torch
from tiny_models import tiny_visual_decoder_config as tiny_decoder_config
from tiny_models import tiny_visual_tokenizer_config as tiny_tokenizer_config
from transformers import AutoConfig, AutoModel

from video_lavit import (
    InvalidInputError,
    VideoLaVITVisualTokenDecoder,
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizer,
    VideoLaVITVisualTokenizerConfig,
)
from video_lavit.media_tokenizers.layers import policy_attention
from video_lavit.training import freeze_for_training

HUB_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs")
KEYS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "keys")


def _spread_keep_scores(model):
    # Random initial predictor scores are all near zero; a larger last layer gives a clear keep / drop mix.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in (model.token_predictor.in_proj, model.token_predictor.fc1, model.token_predictor.fc2):
            layer.weight.normal_(0, 1.5 * layer.in_features**-0.5, generator=generator)
        model.token_predictor.fc3.weight.normal_(
            0, 4 * model.token_predictor.fc3.in_features**-0.5, generator=generator
        )


@pytest.fixture(scope="module")
def tokenizer():
    torch.manual_seed(0)
    model = VideoLaVITVisualTokenizer(tiny_tokenizer_config()).eval()
    _spread_keep_scores(model)
    return model


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    return VideoLaVITVisualTokenDecoder(tiny_decoder_config()).eval()


def images(batch=3, seed=0):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_tokenize_shapes_and_invariants(tokenizer):
    output = tokenizer.tokenize(images())
    counts = output.num_tokens
    assert torch.equal(counts, output.keep_mask.sum(dim=1))
    assert counts.min() >= 1 and counts.max() < 16, "the fixture should keep a mix of tokens"
    assert output.indices.shape == (3, int(counts.max()))
    assert torch.equal(output.attention_mask, output.indices >= 0)
    real = output.indices[output.attention_mask]
    assert real.min() >= 0 and real.max() < 16
    # decode(indices) == quantized: the codes are the codebook rows.
    assert torch.equal(output.quantized[output.attention_mask], tokenizer.quantizer.indices_to_codes(real))
    assert (output.quantized[~output.attention_mask] == 0).all()
    assert [len(row) for row in output.split()] == counts.tolist()
    assert torch.allclose(output.token_log_probs.exp().sum(-1), torch.ones(3, 16))


def test_encode_features_shapes(tokenizer):
    output = tokenizer.encode_features(images())
    assert output.features.shape == (3, int(output.num_tokens.max()), 24)
    assert (output.features[~output.attention_mask] == 0).all()
    assert [tuple(row.shape) for row in output.split("features")] == [(int(n), 24) for n in output.num_tokens]


def test_kept_tokens_keep_their_order(tokenizer):
    pixels = images()
    merged, keep, _ = tokenizer._merge(pixels, "argmax", None)
    features = tokenizer.encode_features(pixels)
    for row, mask, packed in zip(merged, keep.bool(), features.split("features")):
        torch.testing.assert_close(packed, tokenizer.language_projection(row[mask]), rtol=1e-5, atol=1e-6)


def test_argmax_is_deterministic_and_sampling_is_seeded(tokenizer):
    pixels = images()
    first, second = tokenizer.tokenize(pixels), tokenizer.tokenize(pixels)
    assert torch.equal(first.indices, second.indices)

    def sample(seed):
        return tokenizer.tokenize(pixels, selection="sample", generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(3).keep_mask, sample(3).keep_mask)
    assert not torch.equal(sample(3).keep_mask, sample(4).keep_mask)
    torch.manual_seed(5)
    global_first = tokenizer.tokenize(pixels, selection="sample")
    torch.manual_seed(5)
    assert torch.equal(global_first.indices, tokenizer.tokenize(pixels, selection="sample").indices)
    with pytest.raises(InvalidInputError, match="selection"):
        tokenizer.tokenize(pixels, selection="top")


def test_batch_equals_single(tokenizer):
    pixels = images(4)
    batched = tokenizer.tokenize(pixels)
    batched_features = tokenizer.encode_features(pixels)
    for index in range(4):
        single = tokenizer.tokenize(pixels[index : index + 1])
        assert torch.equal(single.split()[0], batched.split()[index])
        single_features = tokenizer.encode_features(pixels[index : index + 1]).split("features")[0]
        torch.testing.assert_close(single_features, batched_features.split("features")[index], rtol=1e-5, atol=1e-5)


def test_bad_pixels_are_refused(tokenizer):
    with pytest.raises(InvalidInputError, match=r"pixel_values must have shape \[batch, 3, 32, 32\]"):
        tokenizer.tokenize(torch.zeros(1, 3, 30, 30))
    with pytest.raises(InvalidInputError, match="pixel_values"):
        tokenizer.encode_features([[0.0]])
    for bad in (float("nan"), float("inf")):
        pixels = images(batch=2)
        pixels[1, 2, 5, 5] = bad
        for call in (tokenizer.tokenize, tokenizer.encode_features, tokenizer):
            with pytest.raises(InvalidInputError, match="NaN or infinite"):
                call(pixels)


def test_policy_attention_with_nothing_allowed_averages_the_values():
    query, key, value = torch.randn(3, 1, 2, 4, 8).unbind(0)
    nothing = torch.zeros(1, 1, 1, 4)
    attended = policy_attention(query, key, value, nothing)
    torch.testing.assert_close(attended, value.mean(dim=-2, keepdim=True).expand_as(attended))
    everything = torch.ones(1, 1, 1, 4)
    expected = torch.softmax(query @ key.transpose(-1, -2) / 8**0.5, dim=-1) @ value
    torch.testing.assert_close(policy_attention(query, key, value, everything), expected, rtol=1e-4, atol=1e-5)


def test_save_load_round_trip_through_auto_classes(tmp_path, tokenizer, decoder):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    decoder.save_pretrained(tmp_path / "decoder")
    assert sorted(os.listdir(tmp_path / "tokenizer")) == ["config.json", "model.safetensors"]
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "tokenizer"), VideoLaVITVisualTokenizerConfig)
    loaded = AutoModel.from_pretrained(tmp_path / "tokenizer").eval()
    assert isinstance(loaded, VideoLaVITVisualTokenizer)
    assert freeze_for_training(loaded) == ["vision_model"]
    assert not any(parameter.requires_grad for parameter in loaded.vision_model.parameters())
    pixels = images()
    assert torch.equal(loaded.tokenize(pixels).indices, tokenizer.tokenize(pixels).indices)
    loaded_decoder = AutoModel.from_pretrained(tmp_path / "decoder").eval()
    assert isinstance(loaded_decoder, VideoLaVITVisualTokenDecoder)
    indices = tokenizer.tokenize(pixels).indices
    torch.testing.assert_close(loaded_decoder(indices).prompt_embeds, decoder(indices).prompt_embeds)


def test_decoder_shapes_and_input_forms(tokenizer, decoder):
    tokens = tokenizer.tokenize(images())
    output = decoder(tokens.indices)
    assert output.prompt_embeds.shape == (3, 16, 20)
    assert output.pooled_prompt_embeds.shape == (3, 12)
    assert output.reconstruction.shape == (3, 16, 32)
    from_list = decoder(tokens.split())
    torch.testing.assert_close(from_list.prompt_embeds, output.prompt_embeds)
    from_codes = decoder(codes=tokens.quantized, attention_mask=tokens.attention_mask)
    torch.testing.assert_close(from_codes.pooled_prompt_embeds, output.pooled_prompt_embeds)
    # Padding values do not matter once the mask says they are padding.
    other_padding = tokens.indices.masked_fill(~tokens.attention_mask, 7)
    masked = decoder(other_padding, attention_mask=tokens.attention_mask)
    torch.testing.assert_close(masked.prompt_embeds, output.prompt_embeds)
    # Each image decodes as it would alone.
    alone = decoder(tokens.split()[1][None])
    torch.testing.assert_close(alone.prompt_embeds[0], output.prompt_embeds[1], rtol=1e-5, atol=1e-5)


def test_decoder_refuses_bad_codes(decoder):
    with pytest.raises(InvalidInputError, match=r"code indices must lie in \[0, 16\)"):
        decoder(torch.tensor([[3, 16]]))
    with pytest.raises(InvalidInputError, match="at most 16 codes"):
        decoder(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(InvalidInputError, match="exactly one"):
        decoder()
    with pytest.raises(InvalidInputError, match="attention_mask"):
        decoder(codes=torch.zeros(1, 2, 8))


def test_training_step_of_merger_and_decoder(tokenizer, decoder):
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = VideoLaVITVisualTokenizer(tiny_tokenizer_config())
        model.load_state_dict(tokenizer.state_dict())
        token_decoder = VideoLaVITVisualTokenDecoder(tiny_decoder_config())
        token_decoder.load_state_dict(decoder.state_dict())
        model.train(), token_decoder.train()
        if checkpointing:
            model.activation_checkpointing_enable()
            token_decoder.activation_checkpointing_enable()
        pixels = images(2)
        output = model(pixels, generator=torch.Generator().manual_seed(0), target_keep_ratio=0.5)
        padded = torch.zeros(2, 16, 8)
        padded[:, : output.quantized.shape[1]] = output.quantized
        mask = torch.zeros(2, 16, dtype=torch.bool)
        mask[:, : output.attention_mask.shape[1]] = output.attention_mask
        target = model.get_vision_features(pixels)
        reconstruction = token_decoder(codes=padded, attention_mask=mask, target_features=target)
        loss = output.loss + reconstruction.loss
        assert torch.isfinite(loss)
        loss.backward()
        merger_grads = [p.grad for p in model.token_merger.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in merger_grads)
        assert sum(g.abs().sum() for g in merger_grads) > 0
        assert model.token_predictor.fc3.weight.grad.abs().sum() > 0, "the keep decision passes gradients"
        assert all(p.grad is None for p in model.vision_model.parameters())
        assert token_decoder.input_proj.weight.grad.abs().sum() > 0


def test_bf16(tokenizer, decoder):
    model = VideoLaVITVisualTokenizer(tiny_tokenizer_config()).eval()
    model.load_state_dict(tokenizer.state_dict())
    model.to(torch.bfloat16)
    output = model.tokenize(images())
    assert output.quantized.dtype == torch.bfloat16
    assert model.encode_features(images()).features.dtype == torch.bfloat16
    agreement = (output.keep_mask == tokenizer.tokenize(images()).keep_mask).float().mean()
    assert agreement > 0.8
    half_decoder = VideoLaVITVisualTokenDecoder(tiny_decoder_config()).eval()
    half_decoder.load_state_dict(decoder.state_dict())
    embeds = half_decoder.to(torch.bfloat16)(output.indices).prompt_embeds
    assert embeds.dtype == torch.bfloat16 and torch.isfinite(embeds.float()).all()


def _reference_keys(name):
    keys = {}
    with open(os.path.join(KEYS, name)) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            key, shape, _ = line.rstrip("\n").split("\t")
            keys[key] = torch.empty(eval(shape), device="meta")
    return keys


def test_full_size_configs_parameter_counts_and_reference_keys():
    from video_lavit.conversion.common import rename_keys
    from video_lavit.conversion.visual_tokenizer import DECODER_KEY_RULES, TOKENIZER_KEY_RULES

    with torch.device("meta"):
        tokenizer = VideoLaVITVisualTokenizer(
            VideoLaVITVisualTokenizerConfig.from_pretrained(os.path.join(HUB_CONFIGS, "visual_tokenizer"))
        )
        decoder = VideoLaVITVisualTokenDecoder(
            VideoLaVITVisualTokenDecoderConfig.from_pretrained(os.path.join(HUB_CONFIGS, "visual_token_decoder"))
        )
    # The reference's counts, plus the zero key part of each ViT attention's `qkv.bias` (40 x 1408).
    assert tokenizer.num_parameters() == 1_422_408_322 + 40 * 1408
    assert sum(p.numel() for p in tokenizer.vision_model.parameters()) == 1_012_588_928 + 40 * 1408
    # The decoder's own weights, plus its copy of the 16384 x 32 codebook.
    assert decoder.num_parameters() - decoder.quantizer.embedding.weight.numel() == 414_002_304
    assert decoder.quantizer.embedding.weight.shape == (16384, 32)

    for model, keys_file, rules, count in (
        (tokenizer, "visual_tokenizer.txt", TOKENIZER_KEY_RULES, 813),
        (decoder, "highres_tokenizer_decoder.txt", DECODER_KEY_RULES, 287),
    ):
        reference = _reference_keys(keys_file)
        assert len(reference) == count
        if model is decoder:
            reference["quantize.embedding.weight"] = torch.empty(16384, 32, device="meta")
        state = model.state_dict()
        renamed = rename_keys(reference, rules, set(state), keys_file)
        assert all(tuple(value.shape) == tuple(state[key].shape) for key, value in renamed.items())


def test_tokenize_output_has_no_training_fields(tokenizer):
    with torch.no_grad():
        output = tokenizer.tokenize(images(2))
    assert set(output.keys()) == {
        "indices",
        "quantized",
        "attention_mask",
        "num_tokens",
        "keep_mask",
        "token_log_probs",
    }


def test_codebook_fit_to_images():
    torch.manual_seed(0)
    model = VideoLaVITVisualTokenizer(tiny_tokenizer_config()).eval()
    pixels = images(batch=8)
    codes = model.fit_codebook(pixels, generator=torch.Generator().manual_seed(0))
    output = model.tokenize(pixels)
    assert torch.equal(codes, output.indices[output.attention_mask])
    assert codes.unique().numel() == model.config.codebook_size  # k-means leaves no code unused here
    with pytest.raises(InvalidInputError, match="pixel_values"):
        model.fit_codebook(torch.zeros(2, 3, 16, 16))
