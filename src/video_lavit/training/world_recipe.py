"""Train a tiny Video-LaVIT on the procedural world from scratch, with the package's own pipeline, and test it.

Our addition (the paper trains on web video; this is the proof that the pipeline learns). `train_world_model` runs,
on CPU in a few minutes and seeded throughout:

1. data: `world_dataset` videos for training, each scene moving in all 4 directions (so that its keyframe cannot
   stand in for the motion), and a held-out split (other scenes: positions, textures and backgrounds);
2. a tiny `VideoLaVITConfig` (generation checkpoint, `keyframe_input="codes"`), `build_world_tokenizer` and
   `VideoLaVITProcessor`; the keyframe tokenizer's codebook is fitted by k-means to the training scenes' keyframes
   (`fit_codebook`), and the model is saved as the initial folder;
3. stage 1: `prepare_corpus` without tokenizers (motion grids), then the motion tokenizer, its codebook started from
   k-means of its encoder's features and its unused codes restarted (`dead_code_threshold=1`), trained with
   `build_trainer("motion-tokenizer", ...)`; its weights replace the model's motion tokenizer;
4. `prepare_corpus` of the training conversations with the model's tokenizers; the captions corpus of pre-training
   is derived from the same prepared rows (same tokens, caption text, no conversation), so videos are tokenized
   once;
5. stage 2: pre-training, every weight of the decoder trained, with `VideoLaVITPretrainingCollator`
   (`build_trainer("pretrain", ...)`), captions after their video, with plain-text rows mixed in (one-turn chats
   without media, answered at random: they teach the chat template's words and the end of a reply, and nothing
   about any video);
6. stage 3: instruction tuning with a LoRA adapter (`build_trainer("sft", ...)` with `use_lora`), merged into the
   decoder (`merge_and_unload`) and saved with the processor in `output_dir` (safetensors, a few MB);
7. evaluation on the held-out videos through the processor, as at inference: greedy answers to each question kind,
   scored by `score_world_answer`; and the control, the same questions with every clip's motion codes replaced by
   those of one fixed training clip, where direction answers must fall to chance (25%).

Deliberate differences from the paper's recipe:
- the keyframe tokenizer is not trained (it stands for the frozen EVA-CLIP tokenizer): its random ViT and merger
  are kept, its codebook is fitted by k-means (random codes lose the colours), and its token predictor is set to
  keep every patch (`fc3` weight 0, bias favouring "keep"), so each keyframe has the same number of tokens
  (`(image_size // patch_size) ** 2`) in raster order. The shape is hard to read from such random features at
  32 px (a linear probe of them reaches about half); colour and direction are what the model learns well;
- the LoRA adapter trains no embedding or output-head rows (`trainable_tokens="none"`): pre-training has already
  taught the media tokens;
- the motion tokenizer trains for a few steps only: a forward and backward pass at full grid resolution costs about
  a second per clip on a CPU core (`WorldModelSettings.motion_steps`). Without the k-means start and the restarts,
  those steps can leave every clip with one code, and nothing to learn the direction from.

`python -m video_lavit.training.world_recipe --output DIR` runs it and prints the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import datasets
import torch
from transformers import TrainingArguments, set_seed

from ..errors import InvalidInputError, OutputError
from ..media_tokenizers.token_layout import VIDEO_PLACEHOLDER
from ..modeling.configuration_video_lavit import VideoLaVITConfig
from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
from ..processing.processing_video_lavit import VideoLaVITProcessor
from ..processing.video_processing_video_lavit import VideoLaVITVideoProcessor
from .prepare import PREPARED_FEATURES, MediaTokenizers, load_prepared, prepare_corpus
from .train import DataArguments, LoraArguments, ModelArguments, build_trainer
from .world import WORLD_TEXT_VOCAB_SIZE, build_world_tokenizer, score_world_answer, world_dataset, world_questions

REPORT_NAME = "world_report.json"


@dataclass
class WorldModelSettings:
    """Sizes of the tiny world model and of its training; the defaults are the built-in world model's.

    Attributes:
        keyframe_size (`int`): side of the keyframe the keyframe tokenizer reads.
        patch_size (`int`): its ViT patch side; `(keyframe_size // patch_size) ** 2` keyframe tokens.
        num_visual_codes (`int`): keyframe codebook size.
        num_motion_codes (`int`): motion codebook size.
        hidden_size (`int`), intermediate_size (`int`), num_hidden_layers (`int`), num_attention_heads (`int`):
            the LLaMA decoder.
        max_length (`int`): the decoder's positions.
        motion_steps (`int`), motion_batch_size (`int`), motion_learning_rate (`float`): stage 1.
        media_first_probability (`float`), pretrain_epochs (`float`), pretrain_learning_rate (`float`): stage 2.
        sft_epochs (`float`), sft_learning_rate (`float`), lora_r (`int`), lora_alpha (`int`): stage 3.
        batch_size (`int`): samples per step of stages 2 and 3.
    """

    keyframe_size: int = 32
    patch_size: int = 4
    num_visual_codes: int = 64
    num_motion_codes: int = 16
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_length: int = 512
    motion_steps: int = 6
    motion_batch_size: int = 4
    motion_learning_rate: float = 2e-4
    media_first_probability: float = 1.0
    text_probability: float = 0.3
    pretrain_epochs: float = 20.0
    pretrain_learning_rate: float = 3e-3
    sft_epochs: float = 6.0
    sft_learning_rate: float = 5e-3
    lora_r: int = 16
    lora_alpha: int = 32
    batch_size: int = 16


@dataclass
class WorldTrainingReport:
    """What `train_world_model` measured (also written to `output_dir/world_report.json`).

    Attributes:
        output_dir (`str`): the saved model and processor.
        accuracy (`dict[str, float]`): held-out accuracy per question kind.
        overall_accuracy (`float`): held-out accuracy over every question.
        control_accuracy (`dict[str, float]`): the same with every clip's motion codes replaced by a fixed clip's.
        chance (`float`): accuracy of a random answer (1 / 4).
        num_train (`int`), num_eval (`int`): training and held-out videos.
        keyframe_tokens (`int`): tokens per keyframe.
        timings (`dict[str, float]`): seconds per step of the recipe, and `total`.
        model_size_bytes (`int`): size of the files in `output_dir`.
        losses (`dict[str, float]`): last training loss of each stage.
        examples (`list[dict]`): a few held-out questions with their answers.
        settings (`dict`): the `WorldModelSettings` used, and the seed.
    """

    output_dir: str
    accuracy: dict[str, float]
    overall_accuracy: float
    control_accuracy: dict[str, float]
    chance: float
    num_train: int
    num_eval: int
    keyframe_tokens: int
    timings: dict[str, float] = field(default_factory=dict)
    model_size_bytes: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def world_model_config(settings: WorldModelSettings) -> VideoLaVITConfig:
    """The tiny generation checkpoint's configuration (world text vocabulary, both tokenizers)."""
    hidden = settings.hidden_size
    config = VideoLaVITConfig(
        text_config=dict(
            model_type="llama",
            vocab_size=WORLD_TEXT_VOCAB_SIZE + 2 + settings.num_visual_codes + 2 + settings.num_motion_codes,
            hidden_size=hidden,
            intermediate_size=settings.intermediate_size,
            num_hidden_layers=settings.num_hidden_layers,
            num_attention_heads=settings.num_attention_heads,
            num_key_value_heads=settings.num_attention_heads,
            max_position_embeddings=settings.max_length,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        visual_tokenizer_config=dict(
            image_size=settings.keyframe_size,
            patch_size=settings.patch_size,
            vision_hidden_size=32,
            vision_num_hidden_layers=1,
            vision_num_attention_heads=2,
            vision_intermediate_size=64,
            vision_projection_dim=16,
            merger_num_hidden_layers=1,
            merger_num_attention_heads=2,
            merger_intermediate_size=64,
            codebook_size=settings.num_visual_codes,
            code_dim=32,
            language_hidden_size=hidden,
        ),
        motion_tokenizer_config=dict(
            hidden_size=16,
            num_attention_heads=2,
            codebook_size=settings.num_motion_codes,
            code_dim=8,
            blocks_per_stage=1,
            dead_code_threshold=1.0,  # a code unused in a batch restarts from one of its features
        ),
        text_vocab_size=WORLD_TEXT_VOCAB_SIZE,
        keyframe_input="codes",
        keyframe_selection="argmax",
    )
    return config


def build_world_model(
    settings: WorldModelSettings, seed: int = 0
) -> tuple[VideoLaVITForConditionalGeneration, VideoLaVITProcessor]:
    """The untrained tiny world model (its keyframe tokenizer keeping every patch) and its processor."""
    config = world_model_config(settings)
    set_seed(seed)
    model = VideoLaVITForConditionalGeneration(config).eval()
    predictor = model.model.visual_tokenizer.token_predictor
    with torch.no_grad():
        # (keep, drop) log-probabilities no longer depend on the patch: every patch is kept.
        predictor.fc3.weight.zero_()
        predictor.fc3.bias.copy_(torch.tensor([1.0, -1.0]))
    size = settings.keyframe_size
    processor = VideoLaVITProcessor(
        tokenizer=build_world_tokenizer(config.token_layout),
        video_processor=VideoLaVITVideoProcessor(size={"height": size, "width": size}),
    )
    return model, processor


def _training_arguments(output_dir: str, seed: int, progress: bool, **values) -> TrainingArguments:
    defaults = dict(
        output_dir=output_dir,
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        report_to=[],
        disable_tqdm=not progress,
        save_strategy="no",
        logging_strategy="no",
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.0,
        dataloader_num_workers=0,
    )
    defaults.update(values)
    return TrainingArguments(**defaults)


def _last_loss(trainer) -> float:
    losses = [entry["train_loss"] for entry in trainer.state.log_history if "train_loss" in entry]
    return float(losses[-1]) if losses else float("nan")


def _video_source(dataset: datasets.Dataset) -> datasets.Dataset:
    """World rows as a `read_source` dataset: the `video` paths as a `Video(decode=False)` column."""
    return dataset.select_columns(["id", "video", "conversations"]).cast_column("video", datasets.Video(decode=False))


def _captions_corpus(prepared: datasets.Dataset, captions: dict[str, str], output_dir: str) -> str:
    """A prepared corpus of the same rows as captioned videos (`text` = caption, no conversation)."""
    rows = prepared.map(
        lambda row: {"text": captions[row["id"]], "conversations": []},
        features=prepared.features,
        keep_in_memory=True,
    )
    os.makedirs(os.path.join(output_dir, "data"), exist_ok=True)
    rows.to_parquet(os.path.join(output_dir, "data", "shard-00000.parquet"))
    return output_dir


def _transcripts_corpus(
    train_rows: datasets.Dataset, processor: VideoLaVITProcessor, output_dir: str, seed: int
) -> str:
    """Plain-text rows (RedPajama-style) of one-turn chats without media, answered at random: they teach the chat
    template's words and the reply's end before instruction tuning, and say nothing about any video."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for index in range(len(train_rows)):
        for kind, question in world_questions().items():
            answer = question.options[int(torch.randint(len(question.options), (1,), generator=generator))]
            messages = [{"role": "user", "content": question.question}, {"role": "assistant", "content": answer}]
            text = processor.apply_chat_template(messages, tokenize=False, sanitize_control_tokens=False)
            eos = processor.tokenizer.eos_token
            text = text[: -len(eos)] if text.endswith(eos) else text  # the collator ends the row with EOS
            rows.append(
                {
                    "id": f"transcript-{index}-{kind}",
                    "media": "text",
                    "path": "",
                    "text": text,
                    "conversations": [],
                    "keyframe_input": "codes",
                    "clip_start_times": [],
                    "clip_num_frames": [],
                    "keyframe_codes": [],
                    "keyframe_features": [],
                    "motion_codes": [],
                    "motion_vectors": [],
                }
            )
    os.makedirs(os.path.join(output_dir, "data"), exist_ok=True)
    table = datasets.Dataset.from_list(rows, features=PREPARED_FEATURES)
    table.to_parquet(os.path.join(output_dir, "data", "shard-00000.parquet"))
    return output_dir


def _folder_size(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


@torch.no_grad()
def answer_world_questions(
    model: VideoLaVITForConditionalGeneration,
    processor: VideoLaVITProcessor,
    clips,
    question: str,
    motion_codes: torch.Tensor | None = None,
    batch_size: int = 32,
) -> list[str]:
    """Greedy one-word answers to `question` about each video of `clips` (the video processor's output).

    Args:
        model, processor: the trained model and its processor.
        clips (`BatchFeature`): `processor.video_processor(videos)`, one clip per video.
        question (`str`): the question, asked after the `<video>` placeholder.
        motion_codes (`torch.LongTensor` `[videos, 135]`, *optional*): motion codes to use instead of the clips'.
        batch_size (`int`): prompts per `generate` call.
    """
    num_videos = len(clips["num_clips"])
    if int(clips["num_clips"].sum()) != num_videos:
        raise InvalidInputError("answer_world_questions takes videos of one clip each (world videos).")
    conversation = [{"role": "user", "content": f"{VIDEO_PLACEHOLDER}\n{question}"}]
    prompt = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    answers = []
    for start in range(0, num_videos, batch_size):
        part = slice(start, min(num_videos, start + batch_size))
        videos = {
            "keyframe_pixel_values": clips["keyframe_pixel_values"][part],
            "motion_vectors": clips["motion_vectors"][part],
            "num_clips": clips["num_clips"][part],
        }
        count = len(videos["num_clips"])
        inputs = processor(
            text=[prompt] * count,
            videos=videos,
            keyframe_tokenizer=model,
            motion_codes=None if motion_codes is None else motion_codes[part],
        )
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers += processor.post_process_answer(processor.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def _evaluate(model, processor, eval_rows: datasets.Dataset, fixed_motion: torch.Tensor):
    clips = processor.video_processor(list(eval_rows["video"]), return_tensors="pt")
    # The model's own motion codes of each clip, computed once for every question kind.
    motion_codes = model.model.get_motion_codes(clips["motion_vectors"])
    accuracy, control, examples = {}, {}, []
    fixed = fixed_motion.reshape(1, -1).expand(len(eval_rows), -1)
    for kind, question in world_questions().items():
        truths = eval_rows[kind]
        answers = answer_world_questions(model, processor, clips, question.question, motion_codes=motion_codes)
        controlled = answer_world_questions(model, processor, clips, question.question, motion_codes=fixed)
        accuracy[kind] = sum(map(score_world_answer, [kind] * len(truths), answers, truths)) / len(truths)
        control[kind] = sum(map(score_world_answer, [kind] * len(truths), controlled, truths)) / len(truths)
        examples += [
            {
                "id": eval_rows["id"][index],
                "question": question.question,
                "answer": answers[index],
                "truth": truths[index],
            }
            for index in range(2)
        ]
    return accuracy, control, examples


def train_world_model(
    output_dir: str | os.PathLike,
    *,
    num_train: int = 256,
    num_eval: int = 64,
    seed: int = 0,
    progress: bool = True,
    settings: WorldModelSettings | None = None,
    work_dir: str | os.PathLike | None = None,
    num_proc: int = 1,
) -> WorldTrainingReport:
    """Train the tiny world model from scratch (see the module docstring), save it in `output_dir`, evaluate it.

    Args:
        output_dir (`str`): where the merged model, its processor and `world_report.json` are written.
        num_train (`int`, *optional*, defaults to 256): training videos (each with 3 questions and a caption).
        num_eval (`int`, *optional*, defaults to 64): held-out videos (each asked every question kind).
        seed (`int`, *optional*, defaults to 0): seeds the videos, the initial weights and every training stage.
        progress (`bool`, *optional*, defaults to `True`): show progress bars.
        settings ([`WorldModelSettings`], *optional*): model and training sizes (default: the built-in model's).
        work_dir (`str`, *optional*): where videos, prepared corpora and intermediate models go (default: a
            temporary folder, removed at the end).
        num_proc (`int`, *optional*, defaults to 1): processes that prepare the corpora.

    Returns:
        [`WorldTrainingReport`].
    """
    for name, value in (("num_train", num_train), ("num_eval", num_eval)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 4:
            raise InvalidInputError(f"{name} must be an integer of at least 4, got {value!r}.")
    settings = settings or WorldModelSettings()
    output_dir = os.fspath(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise OutputError(f"{output_dir}: exists and is not empty; choose a new folder for the world model.")
    temporary = tempfile.TemporaryDirectory(prefix="world-") if work_dir is None else None
    work = temporary.name if temporary is not None else os.fspath(work_dir)
    try:
        return _train(output_dir, work, num_train, num_eval, seed, progress, settings, num_proc)
    finally:
        if temporary is not None:
            temporary.cleanup()


def _train(output_dir, work, num_train, num_eval, seed, progress, settings, num_proc) -> WorldTrainingReport:
    timings, losses = {}, {}
    started = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now
        if progress:
            print(f"world recipe: {name} took {timings[name]:.1f} s", file=sys.stderr)

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    videos = os.path.join(work, "videos")
    # Each training scene moves in all 4 directions: the keyframe cannot stand in for the motion.
    train_rows = world_dataset(num_train, videos, seed=seed, split="train", scenes_in_every_direction=True)
    eval_rows = world_dataset(num_eval, videos, seed=seed, split="test")
    lap("videos")

    model, processor = build_world_model(settings, seed)
    # The keyframe tokenizer's codebook: k-means of the training scenes' keyframe features (one video per scene).
    scenes = {}
    for index, video_seed in enumerate(train_rows["video_seed"]):
        scenes.setdefault(video_seed, index)
    videos_of_scenes = list(train_rows.select(sorted(scenes.values()))["video"])
    keyframes = processor.video_processor(videos_of_scenes, return_tensors="pt")["keyframe_pixel_values"]
    model.model.visual_tokenizer.fit_codebook(keyframes, generator=torch.Generator().manual_seed(seed))
    lap("keyframe_codebook")
    initial = os.path.join(work, "initial")
    model.save_pretrained(initial)
    processor.save_pretrained(initial)

    # Stage 1: the motion tokenizer, from the motion grids of as many training videos as its steps read (a forward
    # and backward at full grid resolution costs about a second per clip on a CPU core).
    grids = os.path.join(work, "grids")
    motion_rows = train_rows.select(range(min(num_train, settings.motion_steps * settings.motion_batch_size)))
    prepare_corpus(_video_source(motion_rows), grids, num_proc=num_proc, progress=progress)
    lap("prepare_grids")
    # Its codebook starts from k-means of the encoder's features (from random codes, a few steps use one code).
    grid_values = torch.tensor(load_prepared(grids)["motion_vectors"]).flatten(0, 1)
    model.model.motion_tokenizer.fit_codebook(grid_values, generator=torch.Generator().manual_seed(seed))
    motion_folder = os.path.join(work, "motion-tokenizer-initial")
    model.model.motion_tokenizer.save_pretrained(motion_folder)
    set_seed(seed)
    trainer = build_trainer(
        "motion-tokenizer",
        ModelArguments(model=motion_folder),
        DataArguments(data=[grids]),
        LoraArguments(),
        _training_arguments(
            os.path.join(work, "runs", "motion-tokenizer"),
            seed,
            progress,
            max_steps=settings.motion_steps,
            per_device_train_batch_size=settings.motion_batch_size,
            learning_rate=settings.motion_learning_rate,
        ),
    )
    trainer.train()
    losses["motion_tokenizer"] = _last_loss(trainer)
    model.model.motion_tokenizer.load_state_dict(trainer.model.state_dict())
    stage1 = os.path.join(work, "stage1")
    model.save_pretrained(stage1)
    processor.save_pretrained(stage1)
    lap("motion_tokenizer")

    # The training videos' tokens, once: conversations for SFT, the same rows captioned for pre-training.
    conversations = os.path.join(work, "conversations")
    prepare_corpus(
        _video_source(train_rows),
        conversations,
        media_tokenizers=MediaTokenizers.from_model(model),
        num_proc=num_proc,
        progress=progress,
    )
    captions = _captions_corpus(
        load_prepared(conversations),
        dict(zip(train_rows["id"], train_rows["caption"])),
        os.path.join(work, "captions"),
    )
    transcripts = _transcripts_corpus(train_rows, processor, os.path.join(work, "transcripts"), seed)
    lap("prepare_tokens")

    # Stage 2: pre-training on captioned videos, every decoder weight trained.
    pretrained = os.path.join(work, "pretrained")
    set_seed(seed)
    trainer = build_trainer(
        "pretrain",
        ModelArguments(model=stage1),
        DataArguments(
            data=[captions],
            text_data=[transcripts],
            text_probability=settings.text_probability,
            max_length=settings.max_length,
            media_first_probability=settings.media_first_probability,
        ),
        LoraArguments(),
        _training_arguments(
            os.path.join(work, "runs", "pretrain"),
            seed,
            progress,
            num_train_epochs=settings.pretrain_epochs,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.pretrain_learning_rate,
        ),
    )
    trainer.train()
    losses["pretrain"] = _last_loss(trainer)
    trainer.save_model(pretrained)
    processor.save_pretrained(pretrained)
    lap("pretrain")

    # Stage 3: instruction tuning with LoRA, merged into the decoder.
    set_seed(seed)
    trainer = build_trainer(
        "sft",
        ModelArguments(model=pretrained),
        DataArguments(data=[conversations], max_length=settings.max_length),
        LoraArguments(use_lora=True, lora_r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=0.0),
        _training_arguments(
            os.path.join(work, "runs", "sft"),
            seed,
            progress,
            num_train_epochs=settings.sft_epochs,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.sft_learning_rate,
        ),
    )
    trainer.train()
    losses["sft"] = _last_loss(trainer)
    model = trainer.model.merge_and_unload().eval()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    lap("sft")

    # Held-out questions, and the control: every clip's motion replaced by the first training clip's.
    fixed_motion = torch.tensor(load_prepared(conversations)[0]["motion_codes"][0])
    accuracy, control, examples = _evaluate(model, processor, eval_rows, fixed_motion)
    lap("evaluate")
    timings["total"] = round(time.perf_counter() - started, 2)
    counts = [len(question.options) for question in world_questions().values()]
    report = WorldTrainingReport(
        output_dir=output_dir,
        accuracy=accuracy,
        overall_accuracy=sum(accuracy.values()) / len(accuracy),
        control_accuracy=control,
        chance=1 / counts[0],
        num_train=num_train,
        num_eval=num_eval,
        keyframe_tokens=model.config.visual_tokenizer_config.num_patches,
        timings=timings,
        model_size_bytes=_folder_size(output_dir),
        losses=losses,
        examples=examples,
        settings={**asdict(settings), "seed": seed},
    )
    with open(os.path.join(output_dir, REPORT_NAME), "w", encoding="utf-8") as file:
        json.dump(asdict(report), file, indent=2)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m video_lavit.training.world_recipe --output DIR [--seed N] [--quiet]`: train, print the report."""
    parser = argparse.ArgumentParser(description="Train the tiny world model from scratch and evaluate it.")
    parser.add_argument("--output", required=True, help="folder for the model, its processor and the report")
    parser.add_argument("--seed", type=int, default=0, help="seed of the videos, the weights and the training")
    parser.add_argument("--num_train", type=int, default=256, help="training videos")
    parser.add_argument("--num_eval", type=int, default=64, help="held-out videos")
    parser.add_argument("--work_dir", default=None, help="keep videos and intermediate folders here")
    parser.add_argument("--num_proc", type=int, default=1, help="processes that prepare the corpora")
    defaults = WorldModelSettings()
    parser.add_argument("--pretrain_epochs", type=float, default=defaults.pretrain_epochs,
                        help=f"pre-training epochs (default {defaults.pretrain_epochs:g})")  # fmt: skip
    parser.add_argument("--sft_epochs", type=float, default=defaults.sft_epochs,
                        help=f"LoRA instruction-tuning epochs (default {defaults.sft_epochs:g})")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from ..errors import VideoLaVITError

    if args.quiet:
        from ..quiet import silence_library_progress

        silence_library_progress()

    try:
        report = train_world_model(
            args.output,
            num_train=args.num_train,
            num_eval=args.num_eval,
            seed=args.seed,
            progress=not args.quiet,
            work_dir=args.work_dir,
            num_proc=args.num_proc,
            settings=dataclasses.replace(defaults, pretrain_epochs=args.pretrain_epochs, sft_epochs=args.sft_epochs),
        )
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "REPORT_NAME",
    "WorldModelSettings",
    "WorldTrainingReport",
    "answer_world_questions",
    "build_world_model",
    "main",
    "train_world_model",
    "world_model_config",
]
