import os

import pytest
import torch
from transformers import AutoConfig, AutoModel

from video_lavit import InvalidInputError, VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig

HUB_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs", "motion_tokenizer")
KEYS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "keys", "motion_tokenizer.txt")


def tiny_config(**overrides):
    values = dict(hidden_size=16, num_attention_heads=2, codebook_size=16, code_dim=8)
    values.update(overrides)
    return VideoLaVITMotionTokenizerConfig(**values)


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
    assert sum(p.numel() for p in model.parameters()) == 158_476_322
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


def test_upsample_without_materialising_matches_direct_upsample_then_conv():
    from video_lavit.tokenizers.modeling_motion_tokenizer import MotionUpsample

    torch.manual_seed(0)
    for factor in ((2.0, 2.0, 2.0), (2.0, 1.0, 1.0), (1.0, 2.0, 2.0)):
        upsample = MotionUpsample(8, factor)
        hidden = torch.randn(2, 3, 5, 9, 8, requires_grad=True)
        fast = upsample(hidden)
        direct = upsample.forward_upsampled(hidden)
        assert fast.shape == direct.shape and fast.is_contiguous()
        torch.testing.assert_close(fast, direct, rtol=1e-5, atol=1e-6)
        fast.sum().backward()  # training still works through the folded kernels
        assert upsample.conv.weight.grad is not None and torch.isfinite(hidden.grad).all()


def test_conv3d_as_conv2d_per_temporal_tap_matches_conv3d():
    import torch.nn.functional as F

    from video_lavit.tokenizers.modeling_motion_tokenizer import (
        _DOWNSAMPLE_PADDING,
        _DOWNSAMPLE_STRIDES,
        MotionDownsample,
        conv3d_frames,
    )

    torch.manual_seed(0)
    weight, bias = torch.randn(6, 5, 3, 2, 3), torch.randn(6)
    for stride in ((1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 2, 2), (3, 1, 2)):
        grid = torch.randn(3, 8, 7, 9, 5)  # b t h w c
        expected = F.conv3d(grid.permute(0, 4, 1, 2, 3), weight, bias, stride=stride).permute(0, 2, 3, 4, 1)
        output = conv3d_frames(grid, weight, bias, stride)
        assert output.shape == expected.shape and output.is_contiguous()
        torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
    assert conv3d_frames(grid[:1], weight, None, (1, 1, 1)).shape == (1, 6, 6, 7, 6)

    for stride, padding in zip(_DOWNSAMPLE_STRIDES, _DOWNSAMPLE_PADDING):
        downsample = MotionDownsample(8, stride, padding)
        hidden = torch.randn(2, 6, 10, 18, 8, requires_grad=True)
        direct = downsample.conv(F.pad(hidden.permute(0, 4, 1, 2, 3), padding)).permute(0, 2, 3, 4, 1)
        output = downsample(hidden)
        torch.testing.assert_close(output, direct, rtol=1e-5, atol=1e-5)
        output.square().sum().backward()  # trains through the per-frame path
        assert downsample.conv.weight.grad is not None and torch.isfinite(hidden.grad).all()


def test_mlp_activates_in_place_only_where_nobody_can_tell(monkeypatch):
    import torch.nn.functional as F

    from video_lavit.tokenizers.layers import Mlp

    torch.manual_seed(0)
    mlp, x = Mlp(8, 32), torch.randn(3, 5, 8)
    expected = mlp.fc2(F.gelu(mlp.fc1(x))).detach()
    calls = []
    monkeypatch.setattr(torch.ops.aten, "gelu_", lambda tensor, **kwargs: calls.append(1) or F.gelu(tensor, **kwargs))
    with torch.inference_mode():
        assert torch.equal(mlp(x), expected) and len(calls) == 1
    monkeypatch.undo()
    with torch.no_grad():
        assert torch.equal(mlp(x), expected)

    seen = []
    handle = mlp.fc1.register_forward_hook(lambda module, args, output: seen.append(output))
    with torch.no_grad():
        assert torch.equal(mlp(x), expected)
    handle.remove()
    torch.testing.assert_close(seen[0], mlp.fc1(x))  # the hooked output was not overwritten by the GELU
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, output: None)
    try:
        assert not mlp._activates_in_place(torch.zeros(1))
    finally:
        handle.remove()
    assert mlp._activates_in_place(torch.zeros(1))

    output = mlp(x)  # autograd: out of place, gradients flow
    output.sum().backward()
    assert torch.equal(output.detach(), expected) and mlp.fc1.weight.grad is not None


def test_mlp_scratch_is_reused_within_its_scope_only():
    import torch.nn.functional as F

    from video_lavit.tokenizers import layers
    from video_lavit.tokenizers.layers import Mlp, scratch_scope

    torch.manual_seed(0)
    mlp, x = Mlp(8, 32), torch.randn(3, 5, 8)
    expected = mlp.fc2(F.gelu(mlp.fc1(x))).detach()
    expected_two = mlp.fc2(F.gelu(mlp.fc1(x[:2]))).detach()
    pointers = []
    fc2 = mlp.fc2.forward
    mlp.fc2.forward = lambda wide: pointers.append(wide.data_ptr()) or fc2(wide)
    with torch.no_grad():
        with scratch_scope():
            with scratch_scope():  # nested scopes share the outer one's scratch
                assert torch.equal(mlp(x), expected)
            assert torch.equal(mlp(x[:2]), expected_two) and torch.equal(mlp(x), expected)
            assert len(set(pointers)) == 1 and layers._SCRATCH.buffers
            assert torch.equal(mlp(x.transpose(0, 1)), expected.transpose(0, 1))  # any layout of the input
            bigger = torch.randn(4, 5, 8)  # grows the scratch
            assert torch.equal(mlp(bigger), mlp.fc2(F.gelu(mlp.fc1(bigger))))
            assert mlp._fc1_into_scratch(x.double()) is None  # another dtype than the weights: the plain path
        assert layers._SCRATCH.buffers is None  # freed with the scope
        with scratch_scope():
            handle = mlp.fc1.register_forward_pre_hook(lambda module, args: None)
            assert mlp._fc1_into_scratch(x) is None  # a hooked fc1 is called as a module
            handle.remove()
    with scratch_scope():
        output = mlp(x)  # autograd records: no scratch, gradients flow
        assert output.requires_grad and mlp._fc1_into_scratch(x) is None
    output.sum().backward()
    assert torch.equal(output.detach(), expected)

    attention, states = layers.QVBiasSelfAttention(8, 2), torch.randn(3, 5, 8)
    for parameter in attention.parameters():
        torch.nn.init.normal_(parameter)
    expected = attention(states).detach()
    with torch.no_grad(), scratch_scope():
        assert torch.equal(attention(states), expected) and torch.equal(attention(states), expected)
        assert [key[0] for key in layers._SCRATCH.buffers] == ["qkv"]  # one scratch, reused
        assert torch.equal(attention(states.transpose(0, 1).contiguous().transpose(0, 1)), expected)  # strided
    with scratch_scope():
        output = attention(states)  # autograd records: no scratch
        assert output.requires_grad and not layers._SCRATCH.buffers


def test_compile_gives_identical_tokens(tiny_model, monkeypatch):
    import copy

    try:
        from torch._inductor import cpp_builder  # noqa: F401
    except Exception as error:  # pragma: no cover - depends on the torch build
        pytest.skip(f"inductor unavailable: {error}")
    compiled = copy.deepcopy(tiny_model)
    compiled.compile()
    x = motion(2, seed=3)
    from video_lavit.tokenizers.layers import SpatioTemporalBlock

    monkeypatch.setattr(SpatioTemporalBlock, "chunk_bytes", 1000 * 64 * 4)  # several chunks of changing shapes
    with torch.inference_mode():
        expected = tiny_model.encode(x).indices
        indices = compiled.encode(x).indices
        assert torch.equal(indices, expected)
        torch.testing.assert_close(compiled.decode(indices), tiny_model.decode(indices), rtol=1e-4, atol=1e-4)
        assert torch.equal(compiled.encode(motion(1, seed=4)).indices, tiny_model.encode(motion(1, seed=4)).indices)
    assert set(compiled.state_dict()) == set(tiny_model.state_dict())
    import pickle

    restored = pickle.loads(pickle.dumps(compiled))  # runs eagerly
    with torch.inference_mode():
        assert torch.equal(restored.encode(x).indices, expected)


def test_blocks_give_the_same_numbers_in_chunks_as_whole(monkeypatch):
    from video_lavit.tokenizers import layers
    from video_lavit.tokenizers.layers import SpatioTemporalBlock, _whole_block

    chunk_counts = []
    chunk_slices = layers._chunk_slices

    def counted(*args):
        slices = list(chunk_slices(*args))
        chunk_counts.append(len(slices))
        return slices

    monkeypatch.setattr(layers, "_chunk_slices", counted)

    torch.manual_seed(0)
    block = SpatioTemporalBlock(16, 2, 4.0, 1e-5).eval()
    for parameter in block.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    hidden = torch.randn(3, 6, 45, 16)
    with torch.no_grad():
        whole = _whole_block(block, hidden)
        # rows per chunk = chunk_bytes / (64 features * 4 bytes): one frame or position at a time, runs within one
        # clip, several whole clips, everything at once, and no chunking at all
        for rows, spatial_chunks, temporal_chunks in (
            (1, 18, 135),  # one frame / one position at a time
            (100, 9, 9),  # two frames / 16 positions of one clip at a time
            (540, 2, 2),  # two whole clips, then the last one
            (10**6, 1, 1),  # everything at once
            (None, None, None),  # no chunking
        ):
            chunk_counts.clear()
            monkeypatch.setattr(SpatioTemporalBlock, "chunk_bytes", None if rows is None else rows * 64 * 4)
            chunked = block(hidden)
            assert chunk_counts == ([] if rows is None else [spatial_chunks, temporal_chunks])
            assert chunked.shape == hidden.shape and chunked.is_contiguous()
            torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
            strided = block(hidden.transpose(1, 2).contiguous().transpose(1, 2))  # not contiguous
            torch.testing.assert_close(strided, whole, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(SpatioTemporalBlock, "chunk_bytes", 20 * 64 * 4)
    chunk_counts.clear()
    hidden.requires_grad_(True)
    block(hidden).sum().backward()  # with autograd the block runs whole and trains
    assert chunk_counts == [] and torch.isfinite(hidden.grad).all() and block.mlp.fc1.weight.grad is not None
    with torch.no_grad():  # a trace records the whole block, which works at any batch size
        traced = torch.jit.trace(block, hidden[:1].detach())
        torch.testing.assert_close(traced(hidden.detach()), whole, rtol=1e-5, atol=1e-5)


def test_block_sequence_shares_its_buffers_and_gives_the_same_numbers(monkeypatch):
    from video_lavit.tokenizers.layers import SpatioTemporalBlock, run_spatio_temporal_blocks

    torch.manual_seed(0)
    blocks = torch.nn.ModuleList(SpatioTemporalBlock(16, 2, 4.0, 1e-5) for _ in range(3)).eval()
    for parameter in blocks.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    hidden = torch.randn(2, 6, 45, 16)
    monkeypatch.setattr(SpatioTemporalBlock, "chunk_bytes", 100 * 64 * 4)  # several chunks per block
    shared = []
    forward_chunks = SpatioTemporalBlock._forward_chunks

    def spy(block, states, temporal, output):
        shared.append((states.data_ptr(), temporal.data_ptr(), output.data_ptr()))
        return forward_chunks(block, states, temporal, output)

    monkeypatch.setattr(SpatioTemporalBlock, "_forward_chunks", spy)
    with torch.no_grad():
        expected = hidden
        for block in blocks:
            expected = block(expected)
        shared.clear()
        original = hidden.clone()
        output = run_spatio_temporal_blocks(blocks, hidden)
        assert torch.equal(output, expected) and torch.equal(hidden, original)  # the input was copied, not reused
        assert len(shared) == 3 and len(set(shared)) == 1  # one pair of buffers for all blocks, output in place
        assert shared[0][0] not in (hidden.data_ptr(), shared[0][1])

        shared.clear()
        owned = hidden.clone()
        output = run_spatio_temporal_blocks(blocks, owned, overwrite_input=True)
        assert torch.equal(output, expected) and output.data_ptr() == owned.data_ptr() == shared[0][0]
        strided = hidden.transpose(1, 2).contiguous().transpose(1, 2)  # not contiguous: copied even when given up
        assert torch.equal(run_spatio_temporal_blocks(blocks, strided, overwrite_input=True), expected)

        seen = []  # a forward hook on a block sees that block's own input and output: blocks are called in turn
        handle = blocks[1].register_forward_hook(lambda module, args, result: seen.append((args[0], result)))
        shared.clear()
        output = run_spatio_temporal_blocks(blocks, hidden.clone(), overwrite_input=True)
        handle.remove()
        assert torch.equal(output, expected) and len(seen) == 1
        assert torch.equal(seen[0][1], blocks[1](seen[0][0])) and seen[0][0].data_ptr() != seen[0][1].data_ptr()
    hidden.requires_grad_(True)  # autograd: the blocks are called in turn and run whole
    shared.clear()
    run_spatio_temporal_blocks(blocks, hidden).sum().backward()
    assert shared == [] and torch.isfinite(hidden.grad).all()
    assert run_spatio_temporal_blocks([], hidden) is hidden


def test_chunks_cover_every_frame_or_position_once_within_the_budget():
    from video_lavit.tokenizers.layers import _chunk_slices

    for outer, inner, unit_rows, budget in [(3, 6, 45, 20), (3, 6, 45, 100), (3, 6, 45, 540), (3, 6, 45, 10**6)]:
        seen = torch.zeros(outer, inner, dtype=torch.long)
        for outer_slice, inner_slice in _chunk_slices(outer, inner, unit_rows, budget):
            seen[outer_slice, inner_slice] += 1
            assert seen[outer_slice, inner_slice].numel() * unit_rows <= max(budget, unit_rows)
        assert torch.equal(seen, torch.ones_like(seen))


def test_fast_paths_step_aside_for_hooks_autocast_tracing_and_compiled_blocks(monkeypatch):
    import torch.nn.functional as F

    from video_lavit.tokenizers import layers
    from video_lavit.tokenizers.modeling_motion_tokenizer import MotionDownsample, MotionEncoder

    torch.manual_seed(0)
    downsample = MotionDownsample(8, (1, 2, 2), (0, 1, 0, 1, 1, 1))
    hidden = torch.randn(2, 4, 6, 8, 8)
    direct = downsample.conv(F.pad(hidden.permute(0, 4, 1, 2, 3), downsample.padding)).permute(0, 2, 3, 4, 1)
    calls = []
    handle = downsample.conv.register_forward_hook(lambda module, args, output: calls.append(1))
    torch.testing.assert_close(downsample(hidden), direct)  # a hooked conv is called as a module
    handle.remove()
    assert calls == [1]
    import copy

    half = copy.deepcopy(downsample).bfloat16()  # bf16 runs the Conv3d itself (one rounding, as the reference)
    expected = half.conv(F.pad(hidden.bfloat16().permute(0, 4, 1, 2, 3), half.padding)).permute(0, 2, 3, 4, 1)
    assert torch.equal(half(hidden.bfloat16()), expected)
    with torch.no_grad():
        traced = torch.jit.trace(downsample, hidden[:1])  # the trace records the Conv3d, valid at any batch size
        torch.testing.assert_close(traced(hidden), direct, rtol=1e-5, atol=1e-5)

    # a hook that keeps a down-sampler's output sees it untouched by the next stage's blocks
    torch.manual_seed(0)
    encoder = MotionEncoder(tiny_config()).eval()
    kept = []
    encoder.downsamplers[0].register_forward_hook(lambda module, args, output: kept.append((args[0], output)))
    with torch.no_grad():
        encoder(motion(1))
        torch.testing.assert_close(kept[0][1], encoder.downsamplers[0](kept[0][0]))

    mlp, x = layers.Mlp(8, 32), torch.randn(3, 5, 8)
    with torch.no_grad(), layers.scratch_scope():
        handle = mlp.fc2.register_forward_hook(lambda module, args, output: None)
        assert mlp._fc1_into_scratch(x) is None  # fc2's input would be the scratch
        handle.remove()
        assert mlp._fc1_into_scratch(x) is not None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert mlp._fc1_into_scratch(x) is None and mlp(x).dtype == torch.bfloat16

    blocks = torch.nn.ModuleList(layers.SpatioTemporalBlock(16, 2, 4.0, 1e-5) for _ in range(2)).eval()
    compiled_calls = []

    def compiled(*args, **kwargs):
        compiled_calls.append(1)
        return blocks[0].forward(*args, **kwargs)

    blocks[0]._compiled_call_impl = compiled  # as `block.compile()` leaves it
    with torch.no_grad():
        layers.run_spatio_temporal_blocks(blocks, torch.randn(1, 3, 4, 16))
    assert compiled_calls == [1]  # the block compiled on its own ran through its compiled call


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
