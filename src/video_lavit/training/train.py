"""`video-lavit train pretrain | sft | motion-tokenizer`: the training stages as `transformers.Trainer` runs.

Arguments are `HfArgumentParser` dataclasses (`ModelArguments`, `DataArguments`, `LoraArguments`, and transformers'
own `TrainingArguments`), given as flags or as one YAML file whose keys are the flags' names:

    video-lavit train sft --model MODEL --data PREPARED --output_dir runs/sft --use_lora --bf16
    video-lavit train sft examples/configs/sft_lora.yaml
    torchrun --nproc_per_node 8 -m video_lavit.cli train pretrain config.yaml

- `pretrain` (stage 2): `VideoLaVITPretrainingCollator` over prepared captioned videos / images, with plain-text
  corpora (`--text_data`) mixed in at `--text_probability`.
- `sft` (stage 3): `VideoLaVITInstructionCollator` over prepared conversations.
- `motion-tokenizer` (stage 1): `MotionGridDataCollator` over corpora prepared without tokenizers (their motion grids).
- `world`: the whole pipeline on the package's procedural world, from scratch (`training.world_recipe`).

The language-model stages freeze both tokenizers (`freeze_for_training`), optionally wrap the model in PEFT LoRA
(`video_lavit_lora_config`), resume with `--resume_from_checkpoint PATH | last`, and save the result (the model, or
the adapter; `--merge_lora` also saves the merged model) with its processor in `output_dir`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import torch
from transformers import HfArgumentParser, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from ..errors import InvalidInputError
from .collators import VideoLaVITInstructionCollator, VideoLaVITPretrainingCollator
from .freezing import freeze_for_training
from .lora import TRAINABLE_TOKEN_CHOICES, video_lavit_lora_config
from .motion_tokenizer import MotionGridDataCollator
from .prepare import load_prepared

STAGES = ("pretrain", "sft", "motion-tokenizer")
logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model: str = field(
        metadata={
            "help": "the model folder to train: a Video-LaVIT language model (pretrain, sft) or a motion tokenizer "
            "(motion-tokenizer; a folder with only its config.json trains one from scratch)"
        }
    )
    processor: str | None = field(default=None, metadata={"help": "the processor folder (default: --model)"})
    dtype: str = field(
        default="float32",
        metadata={"help": "dtype the weights load in (float32, bfloat16); mixed precision is --bf16"},
    )


@dataclass
class DataArguments:
    data: list[str] = field(metadata={"help": "prepared corpus folders (`video-lavit prepare`), concatenated"})
    text_data: list[str] | None = field(
        default=None, metadata={"help": "pretrain: prepared plain-text corpora mixed in (RedPajama-style)"}
    )
    text_probability: float = field(
        default=0.0,
        metadata={"help": "pretrain: fraction of the samples taken from --text_data (in [0, 1), repeated as needed)"},
    )
    eval_data: list[str] | None = field(default=None, metadata={"help": "prepared corpora to evaluate on"})
    max_length: int | None = field(
        default=None, metadata={"help": "longest sequence (default: the model's positions); clips cut at boundaries"}
    )
    media_first_probability: float = field(
        default=0.5, metadata={"help": "pretrain: probability of [media, text] rather than [text, media]"}
    )
    padding_side: str = field(default="right", metadata={"help": "where padding goes: right or left"})
    system_prompt: str | None = field(
        default=None, metadata={"help": "sft: a system message before every conversation (default: the template's)"}
    )


@dataclass
class LoraArguments:
    use_lora: bool = field(default=False, metadata={"help": "train a PEFT LoRA adapter instead of every weight"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    trainable_tokens: str = field(
        default="none",
        metadata={"help": f"token rows trained with the adapter: {', '.join(TRAINABLE_TOKEN_CHOICES)}"},
    )
    merge_lora: bool = field(
        default=False, metadata={"help": "also save the merged model in output_dir/merged (merge_and_unload)"}
    )


def parse_arguments(argv: Sequence[str]) -> tuple[ModelArguments, DataArguments, LoraArguments, TrainingArguments]:
    """Flags, or a single YAML file (`.yaml` / `.yml`) holding them."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LoraArguments, TrainingArguments))
    argv = list(argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        if not os.path.isfile(argv[0]):
            raise InvalidInputError(f"{argv[0]}: no such configuration file.")
        try:
            return parser.parse_yaml_file(os.path.abspath(argv[0]))
        except (ValueError, TypeError) as error:  # unknown keys, values TrainingArguments refuses
            raise InvalidInputError(f"{argv[0]}: {error}") from error
    try:
        return parser.parse_args_into_dataclasses(argv)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(str(error)) from error


def _load_corpora(folders: list[str]) -> datasets.Dataset:
    parts = [load_prepared(folder) for folder in folders]
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _drop_too_long(dataset: datasets.Dataset, collator) -> datasets.Dataset:
    """The samples that fit in the collator's `max_length` (a batch of samples that do not would be empty)."""
    if collator.max_length is None or len(dataset) == 0:
        return dataset
    kept = dataset.filter(collator.fits, desc="checking lengths")
    if len(kept) < len(dataset):
        logger.warning(
            "%d of %d samples are longer than max_length=%d even with one clip: left out",
            len(dataset) - len(kept),
            len(dataset),
            collator.max_length,
        )
    return kept


def _mix_in_text(media: datasets.Dataset, text: datasets.Dataset, probability: float, seed: int) -> datasets.Dataset:
    """Every media sample once, and as many text samples as make `probability` of the mix (the text corpus shuffled
    with `seed` and repeated as needed); the trainer's sampler shuffles the two together."""
    if len(text) == 0:
        return media
    wanted = round(len(media) * probability / (1 - probability))
    order = torch.randperm(len(text), generator=torch.Generator().manual_seed(seed)).tolist()
    picked = text.select([order[index % len(text)] for index in range(wanted)])
    return datasets.concatenate_datasets([media, picked]) if wanted else media


def _resume_point(training_args: TrainingArguments) -> str | None:
    resume = training_args.resume_from_checkpoint
    if resume in ("last", "True", "true"):
        resume = get_last_checkpoint(training_args.output_dir)
        if resume is None:
            raise InvalidInputError(f"{training_args.output_dir}: holds no checkpoint to resume from.")
    return resume


def build_trainer(
    stage: str,
    model_args: ModelArguments,
    data_args: DataArguments,
    lora_args: LoraArguments,
    training_args: TrainingArguments,
) -> Trainer:
    """The `Trainer` of a stage, with its model, data and collator (what `run` trains)."""
    if stage not in STAGES:
        raise InvalidInputError(f"the stage must be one of {', '.join(STAGES)}, got {stage!r}.")
    dtype = getattr(torch, model_args.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise InvalidInputError(f"--dtype must name a torch dtype (float32, bfloat16), got {model_args.dtype!r}.")
    training_args.remove_unused_columns = False  # the collators read the prepared rows' raw columns
    if stage == "motion-tokenizer":
        return _motion_tokenizer_trainer(model_args, data_args, training_args, dtype)

    from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration, position_limit
    from ..processing.processing_video_lavit import VideoLaVITProcessor

    model = VideoLaVITForConditionalGeneration.from_pretrained(model_args.model, dtype=dtype)
    processor = VideoLaVITProcessor.from_pretrained(model_args.processor or model_args.model)
    processor.check_layout(model)
    # Prepared corpora hold the keyframe features computed once, so the keyframe projection stays as it is here;
    # training it needs pixels per step (`processor(..., return_pixel_values=True)` in a loop of one's own).
    freeze_for_training(model)
    if training_args.activation_checkpointing:
        model.config.use_cache = False
    if lora_args.use_lora:
        from peft import get_peft_model

        config = video_lavit_lora_config(
            model,
            r=lora_args.lora_r,
            lora_alpha=lora_args.lora_alpha,
            lora_dropout=lora_args.lora_dropout,
            trainable_tokens=lora_args.trainable_tokens,
        )
        model = get_peft_model(model, config)
        if training_args.activation_checkpointing:
            model.enable_input_require_grads()
    max_length = data_args.max_length or position_limit(model.config)
    options = dict(processor=processor, max_length=max_length, padding_side=data_args.padding_side)
    train_dataset = _load_corpora(data_args.data)
    if stage == "pretrain":
        collator = VideoLaVITPretrainingCollator(
            **options, media_first_probability=data_args.media_first_probability, seed=training_args.seed
        )
    else:
        collator = VideoLaVITInstructionCollator(**options, system_prompt=data_args.system_prompt)
    train_dataset = _drop_too_long(train_dataset, collator)
    if len(train_dataset) == 0:
        raise InvalidInputError(f"{', '.join(data_args.data)}: holds no sample to train on.")
    if stage == "pretrain":
        if not 0 <= data_args.text_probability < 1:
            raise InvalidInputError(f"text_probability must lie in [0, 1), got {data_args.text_probability}.")
        if data_args.text_data and data_args.text_probability > 0:
            text = _drop_too_long(_load_corpora(data_args.text_data), collator)
            train_dataset = _mix_in_text(train_dataset, text, data_args.text_probability, training_args.seed)
    eval_dataset = _load_corpora(data_args.eval_data) if data_args.eval_data else None
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=processor,
    )
    return trainer


def _motion_tokenizer_trainer(model_args, data_args, training_args, dtype) -> Trainer:
    from ..media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
    from ..media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer

    folder = model_args.model
    has_weights = os.path.isdir(folder) and any(name.endswith(".safetensors") for name in os.listdir(folder))
    if has_weights:
        model = VideoLaVITMotionTokenizer.from_pretrained(folder, dtype=dtype)
    else:
        model = VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerConfig.from_pretrained(folder)).to(dtype)
    corpus = _load_corpora(data_args.data)
    if len(corpus) and corpus[0]["keyframe_input"] != "none":
        raise InvalidInputError(
            f"{data_args.data[0]}: holds tokens, not motion grids; prepare the corpus without --tokenizers to train "
            "the motion tokenizer on it."
        )
    grids = corpus.select_columns(["motion_vectors"]).map(
        lambda batch: {"motion_vectors": [grid for grids in batch["motion_vectors"] for grid in grids]},
        batched=True,
        features=datasets.Features({"motion_vectors": datasets.Array4D(shape=(2, 24, 20, 36), dtype="float32")}),
    )
    return Trainer(
        model=model,
        args=training_args,
        train_dataset=grids.with_format("torch"),
        data_collator=MotionGridDataCollator(),
    )


def run(stage: str, argv: Sequence[str]) -> str:
    """Parse the arguments, train, save into `output_dir`; returns `output_dir`."""
    model_args, data_args, lora_args, training_args = parse_arguments(argv)
    trainer = build_trainer(stage, model_args, data_args, lora_args, training_args)
    trainer.train(resume_from_checkpoint=_resume_point(training_args))
    trainer.save_model(training_args.output_dir)
    if lora_args.use_lora and lora_args.merge_lora:
        # Merged from the saved adapter and a fresh copy of the base weights on the first process: under FSDP or
        # ZeRO-3 the trained model's weights are shards, which no process can merge alone.
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            _save_merged(model_args, training_args.output_dir, trainer.processing_class)
        trainer.accelerator.wait_for_everyone()
    return training_args.output_dir


def _save_merged(model_args: ModelArguments, output_dir: str, processor) -> None:
    from peft import PeftModel

    from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration

    base = VideoLaVITForConditionalGeneration.from_pretrained(model_args.model, dtype=getattr(torch, model_args.dtype))
    merged = PeftModel.from_pretrained(base, output_dir).merge_and_unload()
    merged.save_pretrained(os.path.join(output_dir, "merged"))
    if processor is not None:
        processor.save_pretrained(os.path.join(output_dir, "merged"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "world":
        from .world_recipe import main as world_main

        return world_main(argv[1:])
    if not argv or argv[0] not in STAGES:
        print(
            f"usage: video-lavit train {{{','.join(STAGES)}}} (CONFIG.yaml | --flags); "
            "`video-lavit train sft --help` lists the flags\n"
            "       video-lavit train world --output DIR: the tiny model of the procedural world, from scratch",
            file=sys.stderr,
        )
        return 2
    from ..errors import VideoLaVITError

    try:
        output_dir = run(argv[0], argv[1:])
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"trained: {output_dir}")
    return 0


__all__ = [
    "DataArguments",
    "LoraArguments",
    "ModelArguments",
    "STAGES",
    "build_trainer",
    "main",
    "parse_arguments",
    "run",
]
