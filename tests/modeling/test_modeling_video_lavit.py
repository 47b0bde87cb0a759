import os

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from video_lavit import InvalidInputError, VideoLaVITConfig, VideoLaVITForCausalLM

HUB_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs")


def tiny_config(keyframe_input="features", image_size=32, patch_size=8, **overrides):
    values = dict(
        text_config=dict(
            model_type="llama",
            vocab_size=356,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        visual_tokenizer_config=dict(
            image_size=image_size,
            patch_size=patch_size,
            vision_hidden_size=32,
            vision_num_hidden_layers=1,
            vision_num_attention_heads=2,
            vision_intermediate_size=64,
            vision_projection_dim=16,
            merger_num_hidden_layers=1,
            merger_num_attention_heads=2,
            merger_intermediate_size=64,
            codebook_size=16,
            code_dim=8,
            language_hidden_size=32,
        ),
        motion_tokenizer_config=dict(
            hidden_size=16, num_attention_heads=2, codebook_size=16, code_dim=8, blocks_per_stage=1
        ),
        text_vocab_size=320,
        keyframe_input=keyframe_input,
    )
    values.update(overrides)
    return VideoLaVITConfig(**values)


def spread_keep_scores(model):
    """Random initial keep scores are all near zero; larger predictor weights give a clear keep / drop mix."""
    predictor = model.model.visual_tokenizer.token_predictor
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in (predictor.in_proj, predictor.fc1, predictor.fc2, predictor.fc3):
            layer.weight.normal_(0, 2 * layer.in_features**-0.5, generator=generator)


@pytest.fixture(scope="module")
def understanding():
    torch.manual_seed(0)
    model = VideoLaVITForCausalLM(tiny_config()).eval()
    spread_keep_scores(model)
    return model


@pytest.fixture(scope="module")
def generation():
    torch.manual_seed(0)
    model = VideoLaVITForCausalLM(tiny_config("codes")).eval()
    spread_keep_scores(model)
    return model


def media(seed=0, clips=3, images=1):
    generator = torch.Generator().manual_seed(seed)
    return dict(
        keyframe_pixel_values=torch.randn(clips, 3, 32, 32, generator=generator),
        motion_vectors=torch.randn(clips, 2, 24, 20, 36, generator=generator) * 3,
        pixel_values=torch.randn(images, 3, 32, 32, generator=generator),
    )


def batch(layout):
    """A video of 2 clips + text, an image + text, a video of 1 clip, and text only; right padded."""
    rows = [
        [1, 5, 6, layout.video_token_id, 7, 8],
        [1, layout.image_token_id, 9, 10],
        [1, 11, layout.video_token_id],
        [1, 12, 13, 14, 15],
    ]
    length = max(map(len, rows))
    input_ids = torch.tensor([row + [0] * (length - len(row)) for row in rows])
    attention_mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows])
    return input_ids, attention_mask, torch.tensor([2, 1])


def test_codes_sequences_are_assembled_as_the_reference(generation):
    layout = generation.token_layout
    input_ids, attention_mask, num_clips = batch(layout)
    inputs = media()
    built = generation.model.build_multimodal_inputs(
        input_ids,
        attention_mask,
        labels=input_ids.masked_fill(attention_mask == 0, -100),
        num_clips=num_clips,
        **inputs,
    )
    assert built.inputs_embeds is None
    tokens = generation.model.visual_tokenizer.tokenize(inputs["keyframe_pixel_values"]).split()
    image_tokens = generation.model.visual_tokenizer.tokenize(inputs["pixel_values"]).split()
    motion = generation.model.motion_tokenizer.encode(inputs["motion_vectors"]).indices

    def clip(index):
        return [
            layout.image_start_id,
            *layout.visual_codes_to_ids(tokens[index]).tolist(),
            layout.image_end_id,
            layout.motion_start_id,
            *layout.motion_codes_to_ids(motion[index]).tolist(),
            layout.motion_end_id,
        ]

    image = [layout.image_start_id, *layout.visual_codes_to_ids(image_tokens[0]).tolist(), layout.image_end_id]
    expected = [
        [1, 5, 6, *clip(0), *clip(1), 7, 8],
        [1, *image, 9, 10],
        [1, 11, *clip(2)],
        [1, 12, 13, 14, 15],
    ]
    for row, ids, mask, labels in zip(expected, built.input_ids, built.attention_mask, built.labels):
        assert ids[: len(row)].tolist() == row
        assert mask.tolist() == [1] * len(row) + [0] * (len(ids) - len(row))
        text = torch.tensor(row) < layout.text_vocab_size
        assert labels[: len(row)].tolist() == torch.where(text, torch.tensor(row), -100).tolist()
        assert (labels[len(row) :] == -100).all()
    assert len(clip(0)) == 2 + len(tokens[0]) + 2 + 135


def test_features_are_placed_between_the_markers(understanding):
    layout = understanding.token_layout
    input_ids, attention_mask, num_clips = batch(layout)
    inputs = media()
    built = understanding.model.build_multimodal_inputs(input_ids, attention_mask, num_clips=num_clips, **inputs)
    features = understanding.model.visual_tokenizer.encode_features(inputs["keyframe_pixel_values"])
    row = built.feature_mask[0].nonzero().flatten()
    first = features.split("features")[0]
    assert built.input_ids[0, row[0] - 1] == layout.image_start_id
    torch.testing.assert_close(built.inputs_embeds[0, row[: len(first)]], first)
    assert built.input_ids[0, row[len(first) - 1] + 1] == layout.image_end_id
    embeddings = understanding.get_input_embeddings()(built.input_ids)
    torch.testing.assert_close(built.inputs_embeds[~built.feature_mask], embeddings[~built.feature_mask])


@pytest.mark.parametrize("fixture", ["understanding", "generation"])
def test_batch_equals_single_and_padding_side_does_not_matter(fixture, request):
    model = request.getfixturevalue(fixture)
    layout = model.token_layout
    input_ids, attention_mask, num_clips = batch(layout)
    inputs = media()
    with torch.no_grad():
        batched = model(input_ids=input_ids, attention_mask=attention_mask, num_clips=num_clips, **inputs).logits
        left = model.model.build_multimodal_inputs(
            input_ids, attention_mask, num_clips=num_clips, padding_side="left", **inputs
        )
        left_logits = model(
            input_ids=None if left.inputs_embeds is not None else left.input_ids,
            inputs_embeds=left.inputs_embeds,
            attention_mask=left.attention_mask,
        ).logits
        single = model(
            input_ids=input_ids[:1, :6],
            keyframe_pixel_values=inputs["keyframe_pixel_values"][:2],
            motion_vectors=inputs["motion_vectors"][:2],
        ).logits
    length = single.shape[1]
    torch.testing.assert_close(batched[0, :length], single[0], rtol=1e-4, atol=1e-4)
    right_lengths = left.attention_mask.sum(1)
    for row, count in enumerate(right_lengths.tolist()):
        torch.testing.assert_close(batched[row, :count], left_logits[row, -count:], rtol=1e-4, atol=1e-4)


def test_training_loss_and_gradients(understanding):
    model = VideoLaVITForCausalLM(tiny_config())
    model.load_state_dict(understanding.state_dict())
    model.train()
    model.activation_checkpointing_enable()
    input_ids, attention_mask, num_clips = batch(model.token_layout)
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, num_clips=num_clips, **media())
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert model.lm_head.weight.grad.abs().sum() > 0
    assert model.model.language_model.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
    merger = model.model.visual_tokenizer.token_merger
    assert sum(p.grad.abs().sum() for p in merger.parameters() if p.grad is not None) > 0
    assert model.model.visual_tokenizer.language_projection.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.model.visual_tokenizer.vision_model.parameters())
    assert all(p.grad is None for p in model.model.motion_tokenizer.parameters())


def test_generate_answers_after_the_prompt_and_uses_media_once(understanding):
    layout = understanding.token_layout
    input_ids = torch.tensor([[0, 0, 1, 5, layout.video_token_id, 7], [1, layout.image_token_id, 9, 10, 11, 12]])
    attention_mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    inputs = media(clips=2)
    calls = []
    hook = understanding.model.visual_tokenizer.vision_model.register_forward_hook(lambda *args: calls.append(1))
    try:
        output = understanding.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=6,
            do_sample=False,
            suppress_tokens=list(layout.multimodal_id_range),
            **inputs,
        )
    finally:
        hook.remove()
    assert len(calls) == 2, "the video's keyframes and the image are encoded once, at prefill"
    assert torch.equal(output[:, :6], input_ids)
    answer = output[:, 6:]
    assert answer.shape == (2, 6)
    assert (answer < layout.text_vocab_size).all()
    # The first prompt alone gives the same answer.
    alone = understanding.generate(
        input_ids=input_ids[:1, 2:],
        max_new_tokens=6,
        do_sample=False,
        suppress_tokens=list(layout.multimodal_id_range),
        keyframe_pixel_values=inputs["keyframe_pixel_values"],
        motion_vectors=inputs["motion_vectors"],
    )
    assert torch.equal(alone[0, 4:], answer[0])


def test_keyframe_and_motion_generation(generation):
    layout = generation.token_layout
    prompts = torch.tensor([[0, 5, 6], [7, 8, 9]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    torch.manual_seed(3)
    keyframes = generation.generate_keyframe_tokens(prompts, mask, do_sample=True, top_k=50, max_new_tokens=12)
    torch.manual_seed(3)
    again = generation.generate_keyframe_tokens(prompts, mask, do_sample=True, top_k=50, max_new_tokens=12)
    assert all(torch.equal(a, b) for a, b in zip(keyframes, again))
    for prompt, row in zip([[5, 6], [7, 8, 9]], keyframes):
        assert row[: len(prompt)].tolist() == prompt
        assert row[len(prompt)] == layout.image_start_id and row[-1] == layout.image_end_id
        codes = row[len(prompt) + 1 : -1]
        assert 1 <= len(codes) <= 11 and layout.is_visual_code(codes).all()
    from video_lavit.modeling.modeling_video_lavit import _pad_left

    ids, pad_mask = _pad_left(keyframes, 0)
    motions = generation.generate_motion_tokens(ids, pad_mask, do_sample=False)
    for keyframe, row in zip(keyframes, motions):
        assert torch.equal(row[: len(keyframe)], keyframe)
        assert row[len(keyframe)] == layout.motion_start_id and row[-1] == layout.motion_end_id
        assert len(row) - len(keyframe) == 137 and layout.is_motion_code(row[len(keyframe) + 1 : -1]).all()


def test_multi_clip_and_image_to_video(generation):
    prompts = torch.tensor([[5, 6], [7, 8]])
    video = generation.generate_video_tokens(
        prompts, num_clips=2, keyframe_kwargs=dict(do_sample=True, max_new_tokens=6), motion_kwargs={}
    )
    assert [len(codes) for codes in video.keyframe_codes] == [2, 2]
    assert all(codes.shape == (2, 135) for codes in video.motion_codes)
    layout = generation.token_layout
    for row in video.sequences:
        assert int((row == layout.motion_end_id).sum()) == 2 and int((row == layout.image_start_id).sum()) == 2
    image = [torch.tensor([3, 4, 5]), torch.tensor([6])]
    torch.manual_seed(0)
    animated = generation.generate_video_tokens(
        prompts, image_codes=image, motion_kwargs=dict(do_sample=True, top_k=50)
    )
    assert [codes[0].tolist() for codes in animated.keyframe_codes] == [[3, 4, 5], [6]]
    assert animated.motion_codes[0].shape == (1, 135)


def test_bad_inputs_are_refused(understanding, generation):
    layout = understanding.token_layout
    input_ids, attention_mask, num_clips = batch(layout)
    with pytest.raises(InvalidInputError, match="num_clips"):
        understanding(input_ids=input_ids, attention_mask=attention_mask, num_clips=torch.tensor([1, 1]), **media())
    with pytest.raises(InvalidInputError, match="1 <image> placeholders but 2 images"):
        understanding(input_ids=input_ids, attention_mask=attention_mask, num_clips=num_clips, **media(images=2))
    with pytest.raises(InvalidInputError, match="placeholders but no images or videos"):
        understanding(input_ids=input_ids, attention_mask=attention_mask)
    with pytest.raises(InvalidInputError, match="continuous features"):
        understanding(input_ids=input_ids[:1, :2], image_codes=[torch.tensor([1])])
    long_prompt = torch.ones(1, 1000, dtype=torch.long)
    long_prompt[0, 1] = layout.video_token_id
    with pytest.raises(InvalidInputError, match="positions; use fewer clips"):
        generation(input_ids=long_prompt, **{k: v for k, v in media(clips=1).items() if k != "pixel_values"})
    with pytest.raises(InvalidInputError, match="motion codes must lie"):
        generation(
            input_ids=input_ids[2:3, :3], keyframe_codes=[torch.tensor([1])], motion_codes=torch.full((1, 135), 16)
        )


def test_save_load_round_trip_through_auto_classes(tmp_path, understanding):
    understanding.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VideoLaVITConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, VideoLaVITForCausalLM)
    input_ids, attention_mask, num_clips = batch(understanding.token_layout)
    with torch.no_grad():
        expected = understanding(input_ids=input_ids, attention_mask=attention_mask, num_clips=num_clips, **media())
        actual = loaded(input_ids=input_ids, attention_mask=attention_mask, num_clips=num_clips, **media())
    torch.testing.assert_close(actual.logits, expected.logits)
    assert all(name.endswith(".safetensors") or not name.endswith(".bin") for name in os.listdir(tmp_path))


def test_bf16(understanding):
    model = VideoLaVITForCausalLM(tiny_config()).eval()
    model.load_state_dict(understanding.state_dict())
    model.to(torch.bfloat16)
    input_ids, attention_mask, num_clips = batch(model.token_layout)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, num_clips=num_clips, **media()).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize(
    "name, keyframe_input", [("video_lavit_understanding", "features"), ("video_lavit_generation", "codes")]
)
def test_full_size_configs_parameter_counts(name, keyframe_input):
    config = VideoLaVITConfig.from_pretrained(os.path.join(HUB_CONFIGS, name))
    assert config.keyframe_input == keyframe_input
    layout = config.token_layout
    assert (layout.image_start_id, layout.visual_code_offset, layout.motion_start_id, layout.motion_code_offset) == (
        32000,
        32002,
        48386,
        48388,
    )
    assert layout.vocab_size == config.text_config.vocab_size == 49412
    with torch.device("meta"):
        model = VideoLaVITForCausalLM(config)
    hidden, intermediate, layers, vocab = 4096, 11008, 32, 49412
    llama = 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden) + hidden
    assert sum(p.numel() for p in model.model.language_model.parameters()) + model.lm_head.weight.numel() == llama
    assert model.model.visual_tokenizer.num_parameters() == 1_422_408_322
    assert model.model.motion_tokenizer.num_parameters() == 158_476_322
    assert model.num_parameters() == llama + 1_422_408_322 + 158_476_322


@pytest.mark.parametrize("name", ["video_lavit_understanding", "video_lavit_generation"])
def test_full_size_processor_files(name):
    import json

    from jinja2 import Template

    from video_lavit import VideoLaVITVideoProcessor

    folder = os.path.join(HUB_CONFIGS, name)
    with open(os.path.join(folder, "processor_config.json")) as handle:
        settings = json.load(handle)
    assert settings["processor_class"] == "VideoLaVITProcessor"
    video_processor = VideoLaVITVideoProcessor(**settings["video_processor"])
    assert (video_processor.fps, video_processor.num_frames) == (6, 24)
    with open(os.path.join(folder, "chat_template.jinja")) as handle:
        template = Template(handle.read())
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Why?"}]}]
    assert template.render(messages=messages, add_generation_prompt=True) == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <video>\nWhy? ASSISTANT:"
    )


def test_prompts_the_model_cannot_read_are_refused(understanding, generation):
    limit = understanding.config.text_config.max_position_embeddings
    with pytest.raises(InvalidInputError, match="prompt is empty"):
        understanding.generate(input_ids=torch.zeros(1, 0, dtype=torch.long), max_new_tokens=2)
    with pytest.raises(InvalidInputError, match=f"more than the model's {limit} positions"):
        understanding(input_ids=torch.full((1, limit + 1), 5))
    with pytest.raises(InvalidInputError, match=f"more than the model's {limit} positions"):
        understanding.generate(input_ids=torch.full((1, limit + 1), 5), max_new_tokens=2)
    with pytest.raises(InvalidInputError, match="outside the vocabulary"):
        understanding.generate(input_ids=torch.tensor([[1, -3, 5]]), max_new_tokens=2)
    with pytest.raises(InvalidInputError, match="outside the vocabulary"):
        understanding(input_ids=torch.tensor([[1, 10**6]]))
    with pytest.raises(InvalidInputError, match="integer token ids"):
        understanding(input_ids=torch.tensor([[1.0, 2.0]]))
    # Generation that would run past the positions stops when they are full.
    output = understanding.generate(
        input_ids=torch.full((1, limit - 3), 5), max_new_tokens=10, min_new_tokens=10, do_sample=False
    )
    assert output.shape == (1, limit)
    # Keyframe and motion phases must fit whole.
    with pytest.raises(InvalidInputError, match="more to generate"):
        generation.generate_motion_tokens(torch.full((1, limit - 100), 5))


def test_keyframe_token_limits(generation):
    prompt = torch.tensor([[5, 6, 7]])
    for bad in (0, 1, -4, 2.5):
        with pytest.raises(InvalidInputError, match="max_new_tokens"):
            generation.generate_keyframe_tokens(prompt, max_new_tokens=bad)
    layout = generation.token_layout
    (row,) = generation.generate_keyframe_tokens(prompt, max_new_tokens=2, do_sample=False)
    assert row[:3].tolist() == [5, 6, 7] and row[3] == layout.image_start_id and row[-1] == layout.image_end_id
    assert len(row) == 3 + 1 + 2  # [IMG], one code, [/IMG]
