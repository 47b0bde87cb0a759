"""Conversion of the reference's language models, on tiny checkpoints in the reference's layout.

The folders are assembled in the test: a tiny LLaMA (`transformers.LlamaForCausalLM`, the class the reference
uses) saved as two `.bin` shards with `config.json` and a tokenizer, plus, for `language_model_sft/`, the stored tiny
reference keyframe and motion tokenizers embedded under `model.visual_tokenizer.*` / `model.motion_tokenizer.*` as
the reference saves them.
"""

import json
import os

import pytest
import torch
from safetensors.torch import load_file
from tiny_tokenizer import build_tiny_llama_tokenizer
from transformers import AutoModelForCausalLM, AutoProcessor, LlamaConfig, LlamaForCausalLM

from video_lavit import CheckpointConversionError, VideoLaVITForConditionalGeneration, convert_visual_tokenizer
from video_lavit.cli import main
from video_lavit.conversion.language_model import convert_language_model

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference")
VISUAL = os.path.join(REFERENCE, "visual_tokenizer")
MOTION = os.path.join(REFERENCE, "motion_tokenizer", "tiny_motion_tokenizer.bin")
HEADS = dict(vision_attention_heads=4, num_attention_heads=4, motion_attention_heads=2)
# 320 text ids + [IMG] [/IMG] + 64 keyframe codes + [MOV] [/MOV] + 64 motion codes
VOCAB = 320 + 2 + 64 + 2 + 64


def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


def write_reference_folder(folder, llama, embed_tokenizers):
    folder.mkdir()
    state = {key: value.clone() for key, value in llama.state_dict().items()}
    if embed_tokenizers:
        for name in ("eva_vitg_psz14.bin", "tokenizer_encoder.bin"):
            prefix = "model.visual_tokenizer.encoder." if name.startswith("eva") else "model.visual_tokenizer."
            for key, value in torch.load(os.path.join(VISUAL, name), weights_only=True).items():
                state[prefix + key] = value
        for key, value in torch.load(MOTION, weights_only=True).items():
            state["model.motion_tokenizer." + key] = value
    keys = sorted(state)
    half = len(keys) // 2
    torch.save({key: state[key] for key in keys[:half]}, folder / "pytorch_model-00001-of-00002.bin")
    torch.save({key: state[key] for key in keys[half:]}, folder / "pytorch_model-00002-of-00002.bin")
    config = llama.config.to_dict()
    config["use_xformers"] = False  # the reference's config carries extra fields
    (folder / "config.json").write_text(json.dumps(config))
    build_tiny_llama_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


def test_understanding_checkpoint(tmp_path, llama):
    source = write_reference_folder(tmp_path / "language_model_sft", llama, embed_tokenizers=True)
    output = tmp_path / "converted"
    model, processor = convert_language_model(source, output, **HEADS)
    assert model.config.keyframe_input == "features"
    ids = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():  # the returned model runs as it is (no tensor left on the meta device)
        torch.testing.assert_close(model(input_ids=ids).logits, llama(input_ids=ids).logits, rtol=0, atol=0)
    assert not any(name.endswith(".bin") for name in os.listdir(output))
    loaded = AutoModelForCausalLM.from_pretrained(output).eval()
    assert isinstance(loaded, VideoLaVITForConditionalGeneration)
    # Text logits are exactly the LLaMA's.
    ids = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, llama(input_ids=ids).logits, rtol=0, atol=0)
    # The embedded tokenizers are the stand-alone converters' results.
    tokenizer, _ = convert_visual_tokenizer(VISUAL, vision_num_attention_heads=4, num_attention_heads=4)
    for key, value in tokenizer.state_dict().items():
        assert torch.equal(loaded.model.visual_tokenizer.state_dict()[key], value), key
    reference_motion = torch.load(MOTION, weights_only=True)
    assert torch.equal(
        loaded.model.motion_tokenizer.quantizer.embedding.weight, reference_motion["quantize.embedding.weight"].float()
    )
    # The processor was written next to the model and knows the layout.
    processor = AutoProcessor.from_pretrained(output)
    assert processor.tokenizer.convert_tokens_to_ids("[IMG]") == 320
    assert processor.tokenizer.convert_tokens_to_ids("[/MOV]") == 320 + 2 + 64 + 1
    assert loaded.generation_config.max_new_tokens == 512


def test_generation_checkpoint_reads_images_as_the_reference_codes(tmp_path, llama):
    source = write_reference_folder(tmp_path / "language_model", llama, embed_tokenizers=False)
    with pytest.raises(CheckpointConversionError, match="does not embed the keyframe tokenizer"):
        convert_language_model(source, **HEADS)
    model, processor = convert_language_model(source, visual_tokenizer=VISUAL, motion_tokenizer=MOTION, **HEADS)
    assert model.config.keyframe_input == "codes"
    reference = load_file(os.path.join(VISUAL, "reference_io.safetensors"))
    layout = model.token_layout
    tokens = model.tokenize_keyframes(reference["pixel_values"])
    assert torch.equal(tokens.token_counts, reference["token_nums"])
    assert torch.equal(tokens.codes, reference["code_indices"])
    # The processor writes them between the markers, as the reference's sequences hold them.
    built = processor(
        text=["a <image>"] * 3, images=reference["pixel_values"], keyframe_tokens=tokens, padding_side="right"
    )
    codes = torch.split(reference["code_indices"], reference["token_nums"].tolist())
    for row, mask, expected in zip(built["input_ids"], built["attention_mask"], codes):
        row = row[mask.bool()]
        start = (row == layout.image_start_id).nonzero().item()
        assert torch.equal(row[start + 1 : -1], expected + layout.visual_code_offset)
        assert row[-1] == layout.image_end_id


def test_command_line_and_errors(tmp_path, llama, capsys):
    source = write_reference_folder(tmp_path / "language_model_sft", llama, embed_tokenizers=True)
    arguments = ["convert", "language-model", "--checkpoint-dir", str(source), "--output", str(tmp_path / "out")]
    heads = ["--vision-attention-heads", "4", "--num-attention-heads", "4", "--motion-attention-heads", "2"]
    assert main([*arguments, *heads]) == 0
    assert "understanding model" in capsys.readouterr().out
    shard = source / "pytorch_model-00001-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    state.pop(sorted(key for key in state if key.startswith("model.layers."))[0])
    state["model.extra.weight"] = torch.zeros(1)
    torch.save(state, shard)
    assert main([*arguments, *heads]) == 1
    error = capsys.readouterr().err
    assert "no rule maps" in error and "model.extra.weight" in error and "missing" in error
    assert main(["convert", "language-model", "--checkpoint-dir", str(tmp_path / "nowhere"), "--output", "x"]) == 1
