"""8- and 4-bit loading of the language model through transformers' `BitsAndBytesConfig` (bitsandbytes runs on
the CPU too), on the built-in world model: the decoder's linear layers are quantized, the keyframe and motion
tokenizers and the output head are left as they are (`QUANTIZATION_SKIP_MODULES`, the README's setting), the
weights take less memory, and the answers to held-out world questions are the full-precision model's. QLoRA: a
LoRA step on the 4-bit model updates its adapter. A config that would quantize the tokenizers is warned about."""

import pytest
import torch
from transformers import BitsAndBytesConfig

from video_lavit import QUANTIZATION_SKIP_MODULES, VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.training.world import world_dataset, world_questions
from video_lavit.training.world_recipe import answer_world_questions
from video_lavit.world_model import world_model_path

bitsandbytes = pytest.importorskip("bitsandbytes")  # the `quantization` extra (scripts/setup_env.sh installs it)
Linear4bit, Linear8bitLt = bitsandbytes.nn.Linear4bit, bitsandbytes.nn.Linear8bitLt

CONFIGS = {
    8: BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES),
    4: BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = world_model_path()
    processor = VideoLaVITProcessor.from_pretrained(path)
    rows = world_dataset(16, tmp_path_factory.mktemp("videos"), seed=7, split="check")
    clips = processor.video_processor(list(rows["video"]), return_tensors="pt")
    model = VideoLaVITForConditionalGeneration.from_pretrained(path).eval()
    answers = {kind: answer_world_questions(model, processor, clips, world_questions()[kind].question)
               for kind in ("colour", "direction")}  # fmt: skip
    return model, processor, clips, answers


@pytest.mark.filterwarnings("ignore:MatMul8bitLt:UserWarning")
@pytest.mark.parametrize("bits", [8, 4])
def test_the_language_model_loads_in_8_and_4_bits(world, bits):
    full, processor, clips, full_answers = world
    model = VideoLaVITForConditionalGeneration.from_pretrained(
        world_model_path(), quantization_config=CONFIGS[bits], device_map="cpu"
    ).eval()
    linear = {8: Linear8bitLt, 4: Linear4bit}[bits]
    decoder = model.model.language_model
    assert all(isinstance(layer.mlp.down_proj, linear) and isinstance(layer.self_attn.q_proj, linear)
               for layer in decoder.layers)  # fmt: skip
    # The tokenizers and the head hold the full-precision weights: the same codes, the same vocabulary scores.
    quantized = [name for name, module in model.named_modules() if isinstance(module, linear)]
    assert quantized and all(name.startswith("model.language_model.") for name in quantized), quantized
    for name in ("model.visual_tokenizer", "model.motion_tokenizer", "lm_head"):
        expected = full.get_submodule(name).state_dict()
        for key, value in model.get_submodule(name).state_dict().items():
            assert torch.equal(value, expected[key]), (name, key)
    assert model.get_memory_footprint() < 0.65 * full.get_memory_footprint()
    for kind, expected in full_answers.items():
        assert answer_world_questions(model, processor, clips, world_questions()[kind].question) == expected, kind


@pytest.mark.filterwarnings("ignore:MatMul8bitLt:UserWarning")
def test_quantizing_the_tokenizers_is_warned_about():
    with pytest.warns(UserWarning, match="QUANTIZATION_SKIP_MODULES"):
        VideoLaVITForConditionalGeneration.from_pretrained(
            world_model_path(), quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cpu"
        )


def test_a_qlora_step_updates_the_adapter(world):
    from peft import get_peft_model, prepare_model_for_kbit_training

    from video_lavit.training.lora import video_lavit_lora_config

    _, processor, clips, _ = world
    model = VideoLaVITForConditionalGeneration.from_pretrained(
        world_model_path(), quantization_config=CONFIGS[4], device_map="cpu"
    )
    model = get_peft_model(prepare_model_for_kbit_training(model), video_lavit_lora_config(model, lora_dropout=0.0))
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    question = world_questions()["colour"].question
    prompt = processor.apply_chat_template([{"role": "user", "content": f"<video>\n{question}"}],
                                           tokenize=False, add_generation_prompt=True)  # fmt: skip
    videos = {key: clips[key][:4] for key in ("keyframe_pixel_values", "motion_vectors", "num_clips")}
    inputs = processor(text=[prompt + "red"] * 4, videos=videos, keyframe_tokenizer=model.base_model.model)
    inputs["labels"] = torch.full_like(inputs["input_ids"], -100)
    inputs["labels"][:, -1] = inputs["input_ids"][:, -1]  # the answer (the same prompts: no padding)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    # Every adapter's B matrix (zero at the start, so the only ones with a gradient in the first step) moved.
    assert {name for name in trainable if "lora_B" in name} <= changed
