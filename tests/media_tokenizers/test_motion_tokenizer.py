import os

import pytest
import torch
from tiny_models import tiny_motion_tokenizer_config as tiny_config
from transformers import AutoConfig, AutoModel

from video_lavit import InvalidInputError, VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig

HUB_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs", "motion_tokenizer")
KEYS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "keys", "motion_tokenizer.txt")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return VideoLaVITMotionTokenizer(tiny_config()).eval()


def motion(batch=2, seed=0):
    return torch.randn(batch, 2, 24, 20, 36, generator=torch.Generator().manual_seed(seed)) * 3


def test_shapes_and_invariants(tiny_model):
    encoded = tiny_model.encode(motion())
    assert encoded.indices.shape == (2, 135) and encoded.indices.dtype == torch.long
    assert encoded.quantized.shape == (2, 3, 5, 9, 8)
    assert 0 <= int(encoded.indices.min()) and int(encoded.indices.max()) < 16
    # decode(indices) == decode of the quantized codes, and the codes are the codebook rows of the indices.
    codes = tiny_model.quantizer.indices_to_codes(encoded.indices).reshape(2, 3, 5, 9, 8)
    assert torch.equal(codes, encoded.quantized)
    decoded = tiny_model.decode(encoded.indices)
    assert decoded.shape == (2, 2, 24, 20, 36)
    assert torch.equal(decoded, tiny_model.decode_codes(encoded.quantized))
    # Re-encoding the codes' own features is stable: the nearest code of a (normalised) code is itself.
    normalised_codebook = torch.nn.functional.normalize(tiny_model.quantizer.codebook, dim=-1)
    assert torch.equal(tiny_model.quantizer.nearest_codes(normalised_codebook), torch.arange(16))
    latent = tiny_model.decode_to_latent_size(encoded.indices, 12, 16)
    assert latent.shape == (2, 2, 24, 12, 16)
    with pytest.raises(ValueError):
        tiny_model.decode(torch.full((1, 135), 16))
    with pytest.raises(ValueError):
        tiny_model.encode(torch.zeros(1, 2, 12, 20, 36))


def test_determinism_and_batch_equals_single(tiny_model):
    batch = motion(3)
    together = tiny_model.encode(batch).indices
    alone = torch.cat([tiny_model.encode(batch[i : i + 1]).indices for i in range(3)])
    assert torch.equal(together, alone)
    assert torch.equal(together, tiny_model.encode(batch).indices)
    torch.testing.assert_close(tiny_model.decode(together[:1]), tiny_model.decode(together)[:1], rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_through_auto_classes(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VideoLaVITMotionTokenizerConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, VideoLaVITMotionTokenizer)
    x = motion()
    assert torch.equal(loaded.encode(x).indices, tiny_model.encode(x).indices)


def test_training_step_has_finite_loss_and_gradients_with_and_without_checkpointing():
    torch.manual_seed(0)
    model = VideoLaVITMotionTokenizer(tiny_config())
    model.train()
    x = motion(1)
    output = model(x)
    assert torch.isfinite(output.loss) and output.loss > 0
    assert output.reconstruction.shape == (1, 2, 24, 20, 36)
    output.loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["encoder.input_proj.weight"].abs().sum() > 0  # straight-through reaches the encoder
    assert grads["quantizer.embedding.weight"].abs().sum() > 0  # codebook loss reaches the codes
    plain = model.encoder.blocks[0].spatial_attention.qkv.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable({"use_reentrant": False})
    model(x).loss.backward()
    torch.testing.assert_close(model.encoder.blocks[0].spatial_attention.qkv.weight.grad, plain)


def test_ema_codebook_and_dead_code_restart():
    torch.manual_seed(0)
    model = VideoLaVITMotionTokenizer(tiny_config(use_ema_codebook=True, dead_code_threshold=0.5)).train()
    assert not model.quantizer.embedding.weight.requires_grad
    before = model.quantizer.codebook.clone()
    output = model(motion(1))
    output.loss.backward()
    assert not torch.equal(before, model.quantizer.codebook)  # updated without an optimiser
    assert torch.isfinite(output.loss)


def test_bf16(tiny_model):
    model = VideoLaVITMotionTokenizer(tiny_config()).to(torch.bfloat16).eval()
    model.load_state_dict({k: v.to(torch.bfloat16) for k, v in tiny_model.state_dict().items()})
    encoded = model.encode(motion(1))
    assert encoded.indices.shape == (1, 135)
    assert model.decode(encoded.indices).dtype == torch.bfloat16
    agreement = (encoded.indices == tiny_model.encode(motion(1)).indices).float().mean()
    assert agreement > 0.8


def test_full_size_config_parameter_count_and_reference_keys():
    from video_lavit.conversion.common import rename_keys
    from video_lavit.conversion.motion_tokenizer import KEY_RULES

    config = VideoLaVITMotionTokenizerConfig.from_pretrained(HUB_CONFIG)
    with torch.device("meta"):
        model = VideoLaVITMotionTokenizer(config)
    # The reference's 158,476,322 parameters, plus the zero key part of each attention's `qkv.bias` (48 x 512).
    assert sum(p.numel() for p in model.parameters()) == 158_476_322 + 48 * 512
    reference = {}
    with open(KEYS) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            name, shape, _ = line.rstrip("\n").split("\t")
            reference[name] = torch.empty(eval(shape), device="meta")
    assert len(reference) == 515
    renamed = rename_keys(reference, KEY_RULES, set(model.state_dict()), "keys")
    state = model.state_dict()
    assert all(tuple(value.shape) == tuple(state[key].shape) for key, value in renamed.items())


def test_chunked_blocks_give_the_same_numbers_as_whole_blocks(monkeypatch):
    from video_lavit.media_tokenizers import chunked_blocks
    from video_lavit.media_tokenizers.chunked_blocks import enable_chunked_blocks
    from video_lavit.media_tokenizers.layers import SpatioTemporalBlock

    chunk_counts = []
    chunk_slices = chunked_blocks._chunk_slices

    def counted(*args):
        slices = list(chunk_slices(*args))
        chunk_counts.append(len(slices))
        return slices

    monkeypatch.setattr(chunked_blocks, "_chunk_slices", counted)
    torch.manual_seed(0)
    block = SpatioTemporalBlock(16, 2, 4.0, 1e-5).eval()
    for parameter in block.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    hidden = torch.randn(3, 6, 45, 16)
    with torch.no_grad():
        whole = block(hidden)
        assert chunk_counts == []  # off unless asked for
        # rows per chunk = chunk_bytes / (64 features * 4 bytes): one frame or position at a time, runs within one
        # clip, several whole clips, everything at once
        for rows, spatial_chunks, temporal_chunks in ((1, 18, 135), (100, 9, 9), (540, 2, 2), (10**6, 1, 1)):
            chunk_counts.clear()
            assert enable_chunked_blocks(block, rows * 64 * 4) == 1
            chunked = block(hidden)
            assert chunk_counts == [spatial_chunks, temporal_chunks]
            assert chunked.shape == hidden.shape
            torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
            strided = block(hidden.transpose(1, 2).contiguous().transpose(1, 2))  # not contiguous
            torch.testing.assert_close(strided, whole, rtol=1e-6, atol=1e-6)
    chunk_counts.clear()
    hidden.requires_grad_(True)
    block(hidden).sum().backward()  # with autograd the block runs whole and trains
    assert chunk_counts == [] and torch.isfinite(hidden.grad).all() and block.mlp.fc1.weight.grad is not None
    enable_chunked_blocks(block, None)
    assert block.chunk_bytes is None
    with pytest.raises(InvalidInputError, match="chunk_bytes"):
        enable_chunked_blocks(block, 0)
    # A whole tokenizer gives identical tokens with and without chunks.
    model = VideoLaVITMotionTokenizer(tiny_config()).eval()
    x = motion(2, seed=3)
    with torch.no_grad():
        expected = model.encode(x).indices
        assert enable_chunked_blocks(model, 500 * 64 * 4) == 2 * 4 * model.config.blocks_per_stage
        assert torch.equal(model.encode(x).indices, expected)


def test_chunks_cover_every_frame_or_position_once_within_the_budget():
    from video_lavit.media_tokenizers.chunked_blocks import _chunk_slices

    for outer, inner, unit_rows, budget in [(3, 6, 45, 20), (3, 6, 45, 100), (3, 6, 45, 540), (3, 6, 45, 10**6)]:
        seen = torch.zeros(outer, inner, dtype=torch.long)
        for outer_slice, inner_slice in _chunk_slices(outer, inner, unit_rows, budget):
            seen[outer_slice, inner_slice] += 1
            assert seen[outer_slice, inner_slice].numel() * unit_rows <= max(budget, unit_rows)
        assert torch.equal(seen, torch.ones_like(seen))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_motion_is_refused(tiny_model, bad):
    """NaN or infinity would flow through every layer and come out as code 0 everywhere."""
    vectors = motion(batch=2)
    vectors[1, 0, 3, 4, 5] = bad
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        tiny_model.encode(vectors)
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        tiny_model(vectors)
    with pytest.raises(InvalidInputError, match="floating point"):
        tiny_model.encode(vectors.long())
    with pytest.raises(InvalidInputError, match="tensor"):
        tiny_model.encode(vectors.tolist())


def test_forward_returns_a_tuple_without_return_dict(tiny_model):
    x = motion(1, seed=5)
    with torch.no_grad():
        as_dict = tiny_model(x)
        as_tuple = tiny_model(x, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], as_dict.loss)


def test_kmeans_codebook_fit():
    from video_lavit.media_tokenizers.vector_quantizer import VectorQuantizer

    # Four tight clusters on the unit sphere, 4 codes: one code per cluster, codes are the clusters' directions.
    generator = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    labels = torch.arange(4).repeat_interleave(25)
    features = 3 * (centres[labels] + 0.01 * torch.randn(100, 8, generator=generator))
    quantizer = VectorQuantizer(4, 8)
    indices = quantizer.fit_kmeans(features, generator=torch.Generator().manual_seed(1))
    assert torch.equal(indices, quantizer.nearest_codes(features))
    assert sorted(indices.unique().tolist()) == [0, 1, 2, 3]
    for cluster in range(4):
        assert indices[labels == cluster].unique().numel() == 1
    assert torch.allclose(quantizer.codebook.norm(dim=-1), torch.ones(4), atol=1e-5)
    with pytest.raises(InvalidInputError, match="needs as many features"):
        VectorQuantizer(200, 8).fit_kmeans(features)
    with pytest.raises(InvalidInputError, match=r"\[\.\.\., 8\]"):
        quantizer.fit_kmeans(features[:, :4])

    # The motion tokenizer fits its codebook to its encoder's features: every code used, codes as `encode` gives.
    model = VideoLaVITMotionTokenizer(tiny_config()).eval()
    codes = model.fit_codebook(motion(2), generator=torch.Generator().manual_seed(0))
    assert codes.shape == (2, 135) and torch.equal(codes, model.encode(motion(2)).indices)
    assert codes.unique().numel() == model.config.codebook_size
