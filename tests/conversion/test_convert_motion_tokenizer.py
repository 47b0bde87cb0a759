"""Parity of the converted motion tokenizer with the reference on stored outputs.

tests/fixtures/reference/motion_tokenizer/ holds a tiny reference checkpoint (hidden 16, 2 heads, 12 blocks,
codebook 64 x 8; random weights, seed 0, stored in fp16 so they are exact in fp32) and the reference's outputs on
two real clips and one random one; its README says exactly how they were made.
"""

import os

import pytest
import torch
from safetensors.torch import load_file

from video_lavit import CheckpointConversionError, VideoLaVITMotionTokenizer, convert_motion_tokenizer
from video_lavit.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "motion_tokenizer")
CHECKPOINT = os.path.join(FIXTURES, "tiny_motion_tokenizer.bin")


@pytest.fixture(scope="module")
def reference():
    return load_file(os.path.join(FIXTURES, "tiny_motion_tokenizer_io.safetensors"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    output = tmp_path_factory.mktemp("converted")
    convert_motion_tokenizer(CHECKPOINT, output, num_attention_heads=2)
    return VideoLaVITMotionTokenizer.from_pretrained(output).eval()


def test_tokens_are_exactly_the_reference(converted, reference):
    with torch.no_grad():
        encoded = converted.encode(reference["motion_vectors"])
    assert torch.equal(encoded.indices, reference["token_ids"])
    torch.testing.assert_close(encoded.features, reference["to_quantizer_features"], rtol=1e-4, atol=1e-5)
    assert torch.equal(encoded.quantized, reference["quantize"])


def test_decoding_matches_the_reference(converted, reference):
    with torch.no_grad():
        decoded = converted.decode(reference["token_ids"])
        latent = converted.decode_to_latent_size(reference["token_ids"], 12, 16)
    torch.testing.assert_close(decoded, reference["decoded"], rtol=0, atol=1e-4)
    torch.testing.assert_close(latent, reference["decoded_from_tokens_latent"], rtol=0, atol=1e-4)
    torch.testing.assert_close(latent, reference["reconstructed_latent"], rtol=0, atol=1e-4)


def test_converted_folder_is_safetensors_only(tmp_path):
    convert_motion_tokenizer(CHECKPOINT, tmp_path, num_attention_heads=2)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


def test_command_line(tmp_path):
    assert (
        main(
            [
                "convert",
                "motion-tokenizer",
                "--checkpoint",
                CHECKPOINT,
                "--output",
                str(tmp_path),
                "--num-attention-heads",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "model.safetensors").exists()


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointConversionError, match="no such checkpoint"):
        convert_motion_tokenizer(tmp_path / "missing.bin")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointConversionError, match="not a loadable"):
        convert_motion_tokenizer(garbage)
    state = torch.load(CHECKPOINT, weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    del state["decoder.norm.bias"]
    extra = tmp_path / "extra.bin"
    torch.save(state, extra)
    with pytest.raises(
        CheckpointConversionError, match="no rule maps.*encoder.extra.weight.*missing.*decoder.norm.bias"
    ):
        convert_motion_tokenizer(extra, num_attention_heads=2)


def test_reference_tokens_when_the_blocks_run_in_small_chunks(converted, reference, monkeypatch):
    from video_lavit.media_tokenizers.layers import SpatioTemporalBlock

    # 6000 rows of the widest intermediate (64 features) per chunk: every block of the first stages runs in
    # several chunks
    monkeypatch.setattr(SpatioTemporalBlock, "chunk_bytes", 6000 * 64 * 4)
    first = next(module for module in converted.modules() if isinstance(module, SpatioTemporalBlock))
    calls = []
    hook = first.mlp.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        encoded = converted.encode(reference["motion_vectors"])
        decoded = converted.decode(reference["token_ids"])
    hook.remove()
    assert len(calls) > 1  # the first block ran in chunks
    assert torch.equal(encoded.indices, reference["token_ids"])
    torch.testing.assert_close(decoded, reference["decoded"], rtol=0, atol=1e-4)
