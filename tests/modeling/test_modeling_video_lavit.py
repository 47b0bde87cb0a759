import os

import pytest
import torch
from tiny_models import spread_keep_scores, tiny_video_lavit_config
from tiny_tokenizer import build_tiny_video_lavit_tokenizer
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText

from video_lavit import (
    InvalidInputError,
    VideoLaVITConfig,
    VideoLaVITForConditionalGeneration,
    VideoLaVITModel,
    VideoLaVITProcessor,
    generate_video_tokens,
    pad_left,
)
from video_lavit.training import freeze_for_training

HUB_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs")

PROMPTS = ["A man <video> rides a bicycle.", "<image> What color is the car?", "The dog <video>", "A quiet street."]


def build_model(keyframe_input="features", seed=0, **overrides):
    torch.manual_seed(seed)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input, **overrides)).eval()
    spread_keep_scores(model.model.visual_tokenizer)
    return model


@pytest.fixture(scope="module")
def understanding():
    return build_model()


@pytest.fixture(scope="module")
def generation():
    return build_model("codes")


@pytest.fixture(scope="module")
def processor():
    return VideoLaVITProcessor(tokenizer=build_tiny_video_lavit_tokenizer())


def media(seed=0, clips=(2, 1), images=1):
    """Decoded videos (the video processor's output) and preprocessed images, as random tensors."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(clips)
    videos = {
        "keyframe_pixel_values": torch.randn(total, 3, 32, 32, generator=generator),
        "motion_vectors": torch.randn(total, 2, 24, 20, 36, generator=generator) * 3,
        "num_clips": torch.tensor(clips),
    }
    return videos, torch.randn(images, 3, 32, 32, generator=generator)


def inputs_for(processor, model, prompts=PROMPTS, padding_side="left", **options):
    videos, images = media()
    count = "".join(prompts).count
    videos = {
        "keyframe_pixel_values": videos["keyframe_pixel_values"][: 3 if count("<video>") == 2 else 2],
        "motion_vectors": videos["motion_vectors"][: 3 if count("<video>") == 2 else 2],
        "num_clips": videos["num_clips"][: count("<video>")],
    }
    return processor(
        text=prompts,
        videos=videos if count("<video>") else None,
        images=images if count("<image>") else None,
        keyframe_tokenizer=model,
        padding_side=padding_side,
        **options,
    )


def test_codes_sequences_are_built_as_the_reference(generation, processor):
    layout = generation.token_layout
    videos, images = media()
    inputs = processor(text=PROMPTS, videos=videos, images=images, keyframe_tokenizer=generation, padding_side="right")
    assert set(inputs) == {"input_ids", "attention_mask", "motion_vectors"}
    tokens = generation.model.visual_tokenizer.tokenize(videos["keyframe_pixel_values"]).split()
    image_tokens = generation.model.visual_tokenizer.tokenize(images).split()
    placeholders = [layout.video_token_id] * 135

    def clip(index):
        keyframe = layout.visual_codes_to_ids(tokens[index]).tolist()
        return [
            layout.image_start_id,
            *keyframe,
            layout.image_end_id,
            layout.motion_start_id,
            *placeholders,
            layout.motion_end_id,
        ]

    prompt = [processor._tokenize_prompt(sample, True) for sample in PROMPTS]
    image = [layout.image_start_id, *layout.visual_codes_to_ids(image_tokens[0]).tolist(), layout.image_end_id]
    video_id, image_id = layout.video_token_id, layout.image_token_id
    expected = []
    clips = iter([[0, 1], [2]])
    for ids in prompt:
        row = []
        for token_id in ids:
            if token_id == video_id:
                for index in next(clips):
                    row += clip(index)
            elif token_id == image_id:
                row += image
            else:
                row.append(token_id)
        expected.append(row)
    for row, ids, mask in zip(expected, inputs["input_ids"], inputs["attention_mask"]):
        assert ids[: len(row)].tolist() == row
        assert mask.tolist() == [1] * len(row) + [0] * (len(ids) - len(row))
    assert torch.equal(inputs["motion_vectors"], videos["motion_vectors"])
    assert len(clip(0)) == 2 + len(tokens[0]) + 2 + 135


def test_features_fill_the_placeholders_between_the_markers(understanding, processor):
    layout = understanding.token_layout
    inputs = inputs_for(processor, understanding)
    videos, images = media()
    with torch.no_grad():
        expected = understanding.model.visual_tokenizer.encode_features(videos["keyframe_pixel_values"])
    first = expected.split("features")[0]
    row = (inputs["input_ids"][0] == layout.image_token_id).nonzero().flatten()
    assert inputs["input_ids"][0, row[0] - 1] == layout.image_start_id
    assert inputs["input_ids"][0, row[len(first) - 1] + 1] == layout.image_end_id
    torch.testing.assert_close(inputs["keyframe_features"][: len(first)], first)
    hidden = []
    hook = understanding.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: hidden.append(kwargs["inputs_embeds"]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            understanding(**inputs)
    finally:
        hook.remove()
    torch.testing.assert_close(hidden[0][0, row[: len(first)]], first)
    # The pixels give the same features as the precomputed ones.
    with torch.no_grad():
        from_features = understanding(**inputs).logits
    assert torch.isfinite(from_features).all()


@pytest.mark.parametrize("fixture", ["understanding", "generation"])
def test_batch_equals_single_and_padding_side_does_not_matter(fixture, request, processor):
    model = request.getfixturevalue(fixture)
    with torch.no_grad():
        right = inputs_for(processor, model, padding_side="right")
        left = inputs_for(processor, model, padding_side="left")
        right_logits = model(**right).logits
        left_logits = model(**left).logits
        single = inputs_for(processor, model, prompts=PROMPTS[:1])
        single_logits = model(**single).logits
    length = single_logits.shape[1]
    torch.testing.assert_close(right_logits[0, :length], single_logits[0], rtol=1e-4, atol=1e-4)
    for row, count in enumerate(right["attention_mask"].sum(1).tolist()):
        torch.testing.assert_close(right_logits[row, :count], left_logits[row, -count:], rtol=1e-4, atol=1e-4)


def test_training_loss_and_every_trainable_parameter_gets_a_gradient(understanding, processor):
    model = build_model()
    model.train()
    model.activation_checkpointing_enable()
    assert freeze_for_training(model) == ["motion_tokenizer", "visual_tokenizer"]
    inputs = inputs_for(processor, model, padding_side="right")
    layout = model.token_layout
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    labels = labels.masked_fill(labels >= layout.vocab_size, -100)
    output = model(**inputs, labels=labels)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in trainable)
    assert all(p.grad is None for p in model.model.visual_tokenizer.parameters())
    # With the projection trained, the features are recomputed from pixels with their gradient.
    model.zero_grad()
    freeze_for_training(model, train_keyframe_projection=True)
    with_pixels = inputs_for(processor, model, padding_side="right", return_pixel_values=True)
    assert "keyframe_features" not in with_pixels and torch.equal(with_pixels["input_ids"], inputs["input_ids"])
    with torch.no_grad():  # the features computed from the sequence-ordered pixels are the processor's
        torch.testing.assert_close(model(**with_pixels).logits, model(**inputs).logits)
    model(**with_pixels, labels=labels).loss.backward()
    assert model.model.visual_tokenizer.language_projection.weight.grad.abs().sum() > 0
    labels[0, -1] = layout.image_token_id
    with pytest.raises(InvalidInputError, match="labels must be -100"):
        model(**with_pixels, labels=labels)


def test_generate_is_transformers_own_and_uses_media_once(understanding, processor):
    layout = understanding.token_layout
    inputs = inputs_for(processor, understanding, prompts=PROMPTS[:2])
    calls = []
    hook = understanding.model.motion_tokenizer.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        output = understanding.generate(**inputs, max_new_tokens=6, do_sample=False)
    finally:
        hook.remove()
    length = inputs["input_ids"].shape[1]
    assert torch.equal(output[:, :length], inputs["input_ids"])
    answer = output[:, length:]
    assert answer.shape == (2, 6) and (answer < layout.text_vocab_size).all()
    # Left-padded batch == one by one.
    for row, prompt in enumerate(PROMPTS[:2]):
        alone = inputs_for(processor, understanding, prompts=[prompt])
        if "<video>" not in prompt:
            alone = processor(text=[prompt], images=media()[1], keyframe_tokenizer=understanding)
        single = understanding.generate(**alone, max_new_tokens=6, do_sample=False)
        assert torch.equal(single[0, alone["input_ids"].shape[1] :], answer[row])
    del calls[:]


def test_continuing_from_the_returned_cache_equals_one_long_generation(understanding, processor):
    inputs = inputs_for(processor, understanding, prompts=PROMPTS[:2])
    whole = understanding.generate(**inputs, max_new_tokens=8, do_sample=False)
    first = understanding.generate(
        **inputs, max_new_tokens=4, do_sample=False, return_dict_in_generate=True, use_cache=True
    )
    mask = torch.cat(
        [inputs["attention_mask"], torch.ones_like(first.sequences[:, inputs["input_ids"].shape[1] :])], 1
    )
    media_inputs = {key: value for key, value in inputs.items() if key not in ("input_ids", "attention_mask")}
    second = understanding.generate(
        first.sequences, attention_mask=mask, cache=first.cache, max_new_tokens=4, do_sample=False, **media_inputs
    )
    assert torch.equal(second, whole)


@pytest.mark.parametrize("fixture", ["understanding", "generation"])
def test_assisted_decoding_and_beam_search_with_media(fixture, request, processor):
    model = request.getfixturevalue(fixture)
    inputs = inputs_for(processor, model, prompts=PROMPTS[:1])
    suppress = {"suppress_tokens": list(model.token_layout.multimodal_id_range)}
    greedy = model.generate(**inputs, max_new_tokens=6, do_sample=False, **suppress)
    assistant = build_model(model.config.keyframe_input, seed=1, num_hidden_layers=1)
    assisted = model.generate(**inputs, max_new_tokens=6, do_sample=False, assistant_model=assistant, **suppress)
    assert torch.equal(assisted, greedy)
    batch = inputs_for(processor, model, prompts=PROMPTS[:2])
    beams = model.generate(**batch, max_new_tokens=4, num_beams=2, num_return_sequences=2, do_sample=False, **suppress)
    assert beams.shape[0] == 4
    for row, prompt in enumerate(PROMPTS[:2]):
        alone = (
            inputs_for(processor, model, prompts=[prompt])
            if "<video>" in prompt
            else processor(text=[prompt], images=media()[1], keyframe_tokenizer=model)
        )
        single = model.generate(
            **alone, max_new_tokens=4, num_beams=2, num_return_sequences=2, do_sample=False, **suppress
        )
        new = single[:, alone["input_ids"].shape[1] :]
        assert torch.equal(beams[2 * row : 2 * row + 2, batch["input_ids"].shape[1] :], new)


def test_common_model_behaviours(understanding, processor):
    inputs = inputs_for(processor, understanding)
    eager = build_model()
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        output = understanding(**inputs, output_hidden_states=True)
        attentions = eager(**inputs, output_attentions=True).attentions
        as_tuple = understanding(**inputs, return_dict=False)
        base = understanding.model(**inputs)
    config = understanding.config.text_config
    assert len(output.hidden_states) == config.num_hidden_layers + 1
    assert len(attentions) == config.num_hidden_layers
    assert attentions[0].shape[-1] == inputs["input_ids"].shape[1]
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], output.logits)
    torch.testing.assert_close(understanding.lm_head(base.last_hidden_state), output.logits)
    # eager == sdpa
    real = inputs["attention_mask"].bool()  # padding positions attend to nothing; their outputs differ
    with torch.no_grad():
        torch.testing.assert_close(eager(**inputs).logits[real], output.logits[real], rtol=1e-4, atol=1e-4)
    # `past_key_values=` is the old name of `cache=`.
    with torch.no_grad():
        prefix = understanding(**inputs, use_cache=True)
        step = torch.full((inputs["input_ids"].shape[0], 1), 5)
        mask = torch.cat([inputs["attention_mask"], torch.ones_like(step)], 1)
        new = understanding(input_ids=step, attention_mask=mask, cache=prefix.cache)
        prefix = understanding(**inputs, use_cache=True)
        old = understanding(input_ids=step, attention_mask=mask, past_key_values=prefix.cache)
    torch.testing.assert_close(old.logits, new.logits)


def test_media_inputs_are_in_the_forward_signature():
    import inspect

    for model_class in (VideoLaVITForConditionalGeneration, VideoLaVITModel):
        parameters = inspect.signature(model_class.forward).parameters
        assert {"pixel_values", "motion_vectors", "keyframe_features", "input_ids", "attention_mask"} <= set(
            parameters
        )


def test_resize_token_embeddings_gives_a_model_that_reads_and_saves_new_ids(tmp_path, processor):
    model = build_model()
    tokenizer = processor.tokenizer
    tokenizer_length = len(tokenizer)
    model.resize_token_embeddings(tokenizer_length + 3)
    new_id = tokenizer_length + 1
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 5, new_id]])).logits
    assert logits.shape[-1] == tokenizer_length + 3
    model.save_pretrained(tmp_path)
    loaded = VideoLaVITForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=torch.tensor([[1, 5, new_id]])).logits, logits)


def test_static_cache_and_compile_for_text(understanding):
    prompt = torch.tensor([[1, 5, 6, 7]])
    dynamic = understanding.generate(prompt, max_new_tokens=5, do_sample=False)
    static = understanding.generate(prompt, max_new_tokens=5, do_sample=False, cache_implementation="static")
    assert torch.equal(static, dynamic)


def test_save_load_round_trip_through_auto_classes(tmp_path, understanding, processor):
    understanding.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VideoLaVITConfig)
    inputs = inputs_for(processor, understanding)
    with torch.no_grad():
        expected = understanding(**inputs)
        for auto in (AutoModelForCausalLM, AutoModelForImageTextToText):
            loaded = auto.from_pretrained(tmp_path).eval()
            assert isinstance(loaded, VideoLaVITForConditionalGeneration)
            torch.testing.assert_close(loaded(**inputs).logits, expected.logits)
        base = AutoModel.from_pretrained(tmp_path).eval()
        assert isinstance(base, VideoLaVITModel)
        torch.testing.assert_close(understanding.lm_head(base(**inputs).last_hidden_state), expected.logits)
    assert all(name.endswith(".safetensors") or not name.endswith(".bin") for name in os.listdir(tmp_path))


def test_bf16(understanding, processor):
    model = build_model().to(torch.bfloat16)
    inputs = inputs_for(processor, understanding)
    inputs["keyframe_features"] = inputs["keyframe_features"].bfloat16()
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


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
    ids, pad_mask = pad_left(keyframes, 0)
    motions = generation.generate_motion_tokens(ids, pad_mask, do_sample=False)
    for keyframe, row in zip(keyframes, motions):
        assert torch.equal(row[: len(keyframe)], keyframe)
        assert row[len(keyframe)] == layout.motion_start_id and row[-1] == layout.motion_end_id
        assert len(row) - len(keyframe) == 137 and layout.is_motion_code(row[len(keyframe) + 1 : -1]).all()


def test_multi_clip_and_image_to_video(generation):
    prompts = torch.tensor([[5, 6], [7, 8]])
    video = generate_video_tokens(
        generation, prompts, num_clips=2, keyframe_kwargs=dict(do_sample=True, max_new_tokens=6), motion_kwargs={}
    )
    assert [len(codes) for codes in video.keyframe_codes] == [2, 2]
    assert all(codes.shape == (2, 135) for codes in video.motion_codes)
    layout = generation.token_layout
    for row in video.sequences:
        assert int((row == layout.motion_end_id).sum()) == 2 and int((row == layout.image_start_id).sum()) == 2
    image = [torch.tensor([3, 4, 5]), torch.tensor([6])]
    torch.manual_seed(0)
    animated = generate_video_tokens(
        generation, prompts, image_codes=image, motion_kwargs=dict(do_sample=True, top_k=50)
    )
    assert [codes[0].tolist() for codes in animated.keyframe_codes] == [[3, 4, 5], [6]]
    assert animated.motion_codes[0].shape == (1, 135)
    with pytest.raises(InvalidInputError, match="num_clips"):
        generate_video_tokens(generation, prompts, num_clips=0)


def test_bad_inputs_are_refused(understanding, generation, processor):
    layout = understanding.token_layout
    inputs = inputs_for(processor, understanding)
    with pytest.raises(InvalidInputError, match="motion placeholders but the media give 2"):
        understanding(**{**inputs, "motion_vectors": inputs["motion_vectors"][:2]})
    with pytest.raises(InvalidInputError, match="keyframe placeholders"):
        understanding(**{**inputs, "keyframe_features": inputs["keyframe_features"][:-1]})
    with pytest.raises(InvalidInputError, match="placeholders but no media"):
        understanding(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    with pytest.raises(InvalidInputError, match="reads keyframes as codes"):
        generation(**inputs)
    with pytest.raises(InvalidInputError, match="exactly one of input_ids or inputs_embeds"):
        understanding(input_ids=inputs["input_ids"], inputs_embeds=torch.zeros(4, 2, 32))
    with pytest.raises(InvalidInputError, match="labels must be -100"):
        understanding(**inputs, labels=inputs["input_ids"])
    with pytest.raises(InvalidInputError, match="keyframe_tokenizer"):
        processor(text=PROMPTS[1], images=media()[1])
    with pytest.raises(InvalidInputError, match="motion codes must lie"):
        processor(
            text="<video>",
            videos={**media()[0], "num_clips": torch.tensor([3])},
            keyframe_tokenizer=generation,
            motion_codes=torch.full((3, 135), 16),
        )
    assert layout.video_token_id == layout.vocab_size + 1


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
        model = VideoLaVITForConditionalGeneration(config)
    hidden, intermediate, layers, vocab = 4096, 11008, 32, 49412
    llama = 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden) + hidden
    assert sum(p.numel() for p in model.model.language_model.parameters()) + model.lm_head.weight.numel() == llama
    # The reference's counts, plus the zero key part of each attention's `qkv.bias` (see QVBiasSelfAttention).
    visual, motion = 1_422_408_322 + 40 * 1408, 158_476_322 + 48 * 512
    assert model.model.visual_tokenizer.num_parameters() == visual
    assert model.model.motion_tokenizer.num_parameters() == motion
    assert model.num_parameters() == llama + visual + motion


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


def test_torch_export_of_the_forward(understanding):
    input_ids = torch.tensor([[1, 5, 6, 7]])
    exported = torch.export.export(understanding, args=(), kwargs={"input_ids": input_ids, "use_cache": False})
    with torch.no_grad():
        expected = understanding(input_ids=input_ids, use_cache=False).logits
    torch.testing.assert_close(exported.module()(input_ids=input_ids, use_cache=False).logits, expected)


def test_processor_and_model_layouts_must_agree(generation, processor):
    with pytest.raises(InvalidInputError, match="token layout"):
        processor(text="<image>", images=media()[1], keyframe_tokenizer=build_model("codes", num_visual_codes=32))


def test_phases_with_several_returned_sequences(generation):
    prompts, mask = torch.tensor([[0, 5, 6], [7, 8, 9]]), torch.tensor([[0, 1, 1], [1, 1, 1]])
    torch.manual_seed(0)
    rows = generation.generate_keyframe_tokens(prompts, mask, do_sample=True, max_new_tokens=5, num_return_sequences=2)
    assert len(rows) == 4
    for row, prompt in zip(rows, [[5, 6], [5, 6], [7, 8, 9], [7, 8, 9]]):
        assert row[: len(prompt)].tolist() == prompt and row[len(prompt)] == generation.token_layout.image_start_id


def test_placeholders_are_never_predicted_nor_labels_after_resizing(processor):
    model = build_model()
    layout = model.token_layout
    model.resize_token_embeddings(len(processor.tokenizer) + 2)
    with torch.no_grad():
        model.lm_head.weight[layout.image_token_id] = 100.0  # would win every step
        logits = model(input_ids=torch.tensor([[1, 5, 6]])).logits
    assert logits[0, -1].argmax() not in (layout.image_token_id, layout.video_token_id)
    output = model.generate(torch.tensor([[1, 5, 6]]), max_new_tokens=3, do_sample=False)
    assert not ((output == layout.image_token_id) | (output == layout.video_token_id)).any()
    with pytest.raises(InvalidInputError, match="labels must be -100"):
        model(input_ids=torch.tensor([[1, 5, 6]]), labels=torch.tensor([[1, layout.image_token_id, 6]]))


def test_positions_follow_the_mask_at_every_step(understanding):
    ids = torch.tensor([[0, 0, 1, 5, 6], [1, 7, 8, 9, 10]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    step = torch.tensor([[11], [12]])
    with torch.no_grad():
        prefix = understanding(input_ids=ids, attention_mask=mask, use_cache=True)
        stepped = understanding(
            input_ids=step, attention_mask=torch.cat([mask, torch.ones(2, 1)], 1), cache=prefix.cache
        )
        whole = understanding(
            input_ids=torch.cat([ids, step], 1), attention_mask=torch.cat([mask, torch.ones(2, 1)], 1)
        )
    torch.testing.assert_close(stepped.logits[:, -1], whole.logits[:, -1], rtol=1e-4, atol=1e-4)


def test_processor_edge_cases(understanding, processor, tmp_path):
    videos, images = media()
    bf16 = build_model().to(torch.bfloat16)
    as_numpy = processor(text="<image>", images=images.bfloat16(), keyframe_tokenizer=bf16, return_tensors="np")
    assert as_numpy["keyframe_features"].dtype.name == "float32"
    from video_lavit import VideoLaVITVideoProcessor, make_sample_video

    path = make_sample_video(tmp_path / "row.mp4", width=64, height=48, seconds=4.0)
    small = VideoLaVITProcessor(
        tokenizer=processor.tokenizer, video_processor=VideoLaVITVideoProcessor(size={"height": 32, "width": 32})
    )
    row = small(text="<video>", videos={"path": path, "bytes": None}, keyframe_tokenizer=understanding)
    assert row["motion_vectors"].shape[0] >= 1
