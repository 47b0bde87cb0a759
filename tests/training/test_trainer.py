"""`Trainer` on prepared rows: full fine-tuning (activation checkpointing, bf16, accumulation, resuming), PEFT LoRA
with trainable token rows, and the `video-lavit train` stages from a YAML file."""

import json
import os

import pytest
import torch
from peft import PeftModel, get_peft_model
from safetensors import safe_open
from tiny_data import prepared_row, write_prepared
from tiny_models import tiny_video_lavit_config
from tiny_tokenizer import build_tiny_video_lavit_tokenizer
from transformers import Trainer, TrainerCallback, TrainingArguments

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor, VideoLaVITVideoProcessor
from video_lavit.cli import main as cli_main
from video_lavit.training import VideoLaVITInstructionCollator, VideoLaVITPretrainingCollator, freeze_for_training
from video_lavit.training.lora import media_token_ids, video_lavit_lora_config
from video_lavit.training.prepare import load_prepared


@pytest.fixture(scope="module")
def processor():
    return VideoLaVITProcessor(
        build_tiny_video_lavit_tokenizer(), VideoLaVITVideoProcessor(size={"height": 32, "width": 32})
    )


def conversation(question, answer):
    return [{"from": "human", "value": f"<video>\n{question}"}, {"from": "gpt", "value": answer}]


def build_model(seed=0):
    torch.manual_seed(seed)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes"))
    freeze_for_training(model)
    return model


class LossRecorder(TrainerCallback):
    def __init__(self, stop_at=None):
        self.losses, self.stop_at = {}, stop_at

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop_at is not None and state.global_step == self.stop_at:
            control.should_save = True
            control.should_training_stop = True


def training_arguments(output_dir, **overrides):
    values = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=6,
        learning_rate=3e-3,
        logging_steps=1,
        save_steps=3,
        save_strategy="steps",
        activation_checkpointing=True,
        bf16=True,
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        data_seed=0,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def pretraining_rows(count=12):
    texts = ["A man is riding a bicycle.", "Two dogs are playing.", "The boat sails across the lake."]
    return [
        prepared_row(f"p{index}", text=texts[index % 3], seed=index, clips=1 + index % 2) for index in range(count)
    ]


def test_full_fine_tuning_resumes_with_the_same_losses(processor, tmp_path):
    dataset = load_prepared(write_prepared(pretraining_rows(), tmp_path / "data"))
    collator = VideoLaVITPretrainingCollator(processor, max_length=512)

    def train(output_dir, stop_at=None, resume=None):
        recorder = LossRecorder(stop_at)
        trainer = Trainer(
            model=build_model(),
            args=training_arguments(output_dir),
            train_dataset=dataset,
            data_collator=collator,
            callbacks=[recorder],
        )
        trainer.train(resume_from_checkpoint=resume)
        return recorder.losses, trainer

    straight, trainer = train(tmp_path / "straight")
    assert sorted(straight) == [1, 2, 3, 4, 5, 6]
    assert all(torch.isfinite(torch.tensor(loss)) for loss in straight.values())
    assert straight[6] < straight[1]
    assert trainer.model.model.language_model.is_activation_checkpointing
    # The tokenizers stayed frozen.
    fresh = build_model()
    for name, parameter in trainer.model.model.motion_tokenizer.state_dict().items():
        torch.testing.assert_close(parameter, fresh.model.motion_tokenizer.state_dict()[name])

    first, _ = train(tmp_path / "resumed", stop_at=3)
    assert sorted(first) == [1, 2, 3] and os.path.isdir(tmp_path / "resumed" / "checkpoint-3")
    second, _ = train(tmp_path / "resumed", resume=str(tmp_path / "resumed" / "checkpoint-3"))
    resumed = {**first, **second}
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-7), step


def test_lora_trains_only_the_adapter_and_the_selected_rows(processor, tmp_path):
    model = build_model()
    base_state = {name: value.clone() for name, value in model.state_dict().items()}
    config = video_lavit_lora_config(model, r=4, lora_alpha=8, lora_dropout=0.0, trainable_tokens="markers")
    peft_model = get_peft_model(model, config)
    trainable = [name for name, parameter in peft_model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name or "trainable_tokens" in name for name in trainable)
    assert not any("tokenizer" in name for name in trainable)

    rows = [
        prepared_row(f"c{index}", seed=index, conversations=conversation("What moves?", "a dog")) for index in range(4)
    ]
    dataset = load_prepared(write_prepared(rows, tmp_path / "data"))
    collator = VideoLaVITInstructionCollator(processor, max_length=512)
    batch = collator(rows[:2])
    peft_model.eval()
    with torch.no_grad():
        before = peft_model(**batch).logits
    arguments = training_arguments(
        tmp_path / "run",
        max_steps=2,
        activation_checkpointing=False,
        bf16=False,
        save_strategy="no",
        learning_rate=1e-2,
    )
    Trainer(model=peft_model, args=arguments, train_dataset=dataset, data_collator=collator).train()
    peft_model.eval()
    with torch.no_grad():
        after = peft_model(**batch).logits
    assert not torch.allclose(before, after)

    # The base weights did not move; the marker rows of the embedding and head did, no other row.
    for name, value in peft_model.get_base_model().state_dict().items():
        if "lora_" in name or "trainable_tokens" in name:
            continue
        original = name.replace(".base_layer", "").replace(".token_adapter", "")
        if original in base_state:
            torch.testing.assert_close(value, base_state[original], msg=name)
    markers = media_token_ids(model.token_layout, "markers")
    embedding = peft_model.get_input_embeddings()
    ids = torch.arange(model.config.text_config.vocab_size)
    with torch.no_grad():
        rows_after = embedding(ids)
    changed = (rows_after != base_state["model.language_model.embed_tokens.weight"]).any(dim=1)
    assert changed.nonzero().flatten().tolist() == markers

    peft_model.save_pretrained(tmp_path / "adapter")
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), framework="pt") as file:
        keys = list(file.keys())
    assert keys and all("lora_" in key or "trainable_tokens" in key for key in keys)
    assert os.path.getsize(tmp_path / "adapter" / "adapter_model.safetensors") < 200_000

    reloaded = PeftModel.from_pretrained(build_model(), tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, after)
        merged = reloaded.merge_and_unload()
        torch.testing.assert_close(merged(**batch).logits, after, atol=1e-5, rtol=1e-4)


def test_train_command_runs_each_stage_from_yaml(processor, tmp_path):
    model_dir = tmp_path / "model"
    build_model().save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    sft_rows = [
        prepared_row(f"c{index}", seed=index, conversations=conversation("What?", "a cat")) for index in range(4)
    ]
    write_prepared(sft_rows, tmp_path / "sft_data")
    config = tmp_path / "sft.yaml"
    config.write_text(
        "\n".join(
            [
                f"model: {model_dir}",
                f"data: [{tmp_path / 'sft_data'}]",
                f"output_dir: {tmp_path / 'sft_run'}",
                "use_lora: true",
                "lora_r: 4",
                "merge_lora: true",
                "max_steps: 2",
                "per_device_train_batch_size: 2",
                "save_strategy: 'no'",
                "report_to: []",
                "use_cpu: true",
                "disable_tqdm: true",
            ]
        )
    )
    assert cli_main(["train", "sft", str(config)]) == 0
    assert os.path.exists(tmp_path / "sft_run" / "adapter_model.safetensors")
    merged = VideoLaVITForConditionalGeneration.from_pretrained(tmp_path / "sft_run" / "merged")
    assert not any("lora" in name for name in merged.state_dict())
    # The merged weights are the base's plus the trained adapter's product.
    base = VideoLaVITForConditionalGeneration.from_pretrained(model_dir)
    adapted = PeftModel.from_pretrained(base, tmp_path / "sft_run").merge_and_unload()
    for name, value in merged.state_dict().items():
        torch.testing.assert_close(value, adapted.state_dict()[name])
    changed = [
        name for name, value in merged.state_dict().items() if not torch.equal(value, build_model().state_dict()[name])
    ]
    assert changed and all("language_model.layers" in name for name in changed)
    assert VideoLaVITProcessor.from_pretrained(tmp_path / "sft_run" / "merged").layout == processor.layout

    write_prepared(pretraining_rows(4), tmp_path / "pretrain_data")
    write_prepared([prepared_row("t", media="text", text="Plain text.")], tmp_path / "text_data")
    arguments = [
        "train", "pretrain", "--model", str(model_dir), "--data", str(tmp_path / "pretrain_data"),
        "--text_data", str(tmp_path / "text_data"), "--text_probability", "0.3", "--output_dir",
        str(tmp_path / "pretrain_run"), "--max_steps", "1", "--per_device_train_batch_size", "2", "--save_strategy",
        "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
    ]  # fmt: skip
    assert cli_main(arguments) == 0
    assert os.path.exists(tmp_path / "pretrain_run" / "model.safetensors")

    grid_rows = []
    for index in range(4):
        row = prepared_row(f"g{index}", clips=1, seed=index)
        row.update(keyframe_input="none", keyframe_codes=[], motion_codes=[])
        row["motion_vectors"] = [torch.randn(2, 24, 20, 36).numpy()]
        grid_rows.append(row)
    write_prepared(grid_rows, tmp_path / "grids")
    motion_dir = tmp_path / "motion_config"
    build_model().model.motion_tokenizer.config.save_pretrained(motion_dir)
    arguments = [
        "train", "motion-tokenizer", "--model", str(motion_dir), "--data", str(tmp_path / "grids"), "--output_dir",
        str(tmp_path / "motion_run"), "--max_steps", "1", "--per_device_train_batch_size", "2", "--save_strategy",
        "no", "--report_to", "none", "--use_cpu",
    ]  # fmt: skip
    assert cli_main(arguments) == 0
    assert json.load(open(tmp_path / "motion_run" / "config.json"))["model_type"]

    assert cli_main(["train", "sft", str(tmp_path / "missing.yaml")]) == 1
    assert cli_main(["train"]) == 2


def test_example_configs_parse(tmp_path):
    import yaml

    from video_lavit.errors import InvalidInputError
    from video_lavit.training.train import parse_arguments

    configs = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "configs")
    for name, stage_keys in (
        ("pretrain.yaml", {"text_data", "media_first_probability"}),
        ("sft_lora.yaml", {"use_lora"}),
    ):
        values = yaml.safe_load(open(os.path.join(configs, name)))
        assert stage_keys <= set(values)
        values.update(bf16=False, use_cpu=True, report_to=[])  # this machine has no GPU
        path = tmp_path / name
        path.write_text(yaml.safe_dump(values))
        model_args, data_args, lora_args, training_args = parse_arguments([str(path)])
        assert model_args.model == values["model"] and data_args.data == values["data"]
        assert training_args.activation_checkpointing and training_args.output_dir == values["output_dir"]
    values["unknown_option"] = 1
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(InvalidInputError, match="unknown_option"):
        parse_arguments([str(path)])


def test_text_corpus_is_mixed_at_the_given_fraction(processor, tmp_path):
    from video_lavit.errors import InvalidInputError
    from video_lavit.training.train import DataArguments, LoraArguments, ModelArguments, build_trainer

    model_dir = tmp_path / "model"
    build_model().save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    write_prepared(pretraining_rows(12), tmp_path / "media")
    texts = [prepared_row(f"t{index}", media="text", text=f"Plain text {index}.") for index in range(5)]
    write_prepared(texts, tmp_path / "text")

    def mixed(probability):
        data = DataArguments(data=[str(tmp_path / "media")], text_data=[str(tmp_path / "text")])
        data.text_probability = probability
        arguments = training_arguments(tmp_path / "run", max_steps=1)
        trainer = build_trainer("pretrain", ModelArguments(model=str(model_dir)), data, LoraArguments(), arguments)
        return trainer.train_dataset

    # Every media sample once; 12 * 0.6 / 0.4 = 18 text samples: the 5 texts repeated, each 3 or 4 times.
    dataset = mixed(0.6)
    media = [sample for sample in dataset["media"] if sample == "video"]
    text_ids = [sample_id for sample_id, kind in zip(dataset["id"], dataset["media"]) if kind == "text"]
    assert len(media) == 12 and len(text_ids) == 18
    assert sorted({text_ids.count(name) for name in set(text_ids)}) == [3, 4] and len(set(text_ids)) == 5
    assert len(mixed(0.0)) == 12
    with pytest.raises(InvalidInputError, match="text_probability"):
        mixed(1.0)
