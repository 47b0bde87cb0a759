"""Training helpers: corpus preparation, collators, freezing and LoRA set-up for `transformers.Trainer`, and a
procedural world of moving shapes (videos, questions, a tiny tokenizer) to check that training learns."""

from .collators import IGNORE_INDEX, VideoLaVITInstructionCollator, VideoLaVITPretrainingCollator
from .distributed import apply_fsdp2
from .freezing import freeze_for_training
from .motion_tokenizer import MotionGridDataCollator, motion_grid_dataset
from .prepare import (
    PREPARED_FEATURES,
    MediaTokenizers,
    PrepareSummary,
    PrepareWorker,
    load_prepared,
    prepare_corpus,
)
from .sources import SOURCE_FEATURES, read_source
from .tiny_tokenizer import build_llama_style_tokenizer, train_bpe
from .world import (
    WORLD_COLOURS,
    WORLD_DIRECTIONS,
    WORLD_FEATURES,
    WORLD_SHAPES,
    WORLD_SPEEDS,
    WORLD_TEXT_VOCAB_SIZE,
    WorldQuestion,
    build_world_tokenizer,
    make_world_video,
    score_world_answer,
    world_caption,
    world_dataset,
    world_questions,
    world_shape_positions,
    world_tokenizer_corpus,
    world_video_frames,
)

__all__ = [
    "IGNORE_INDEX",
    "PREPARED_FEATURES",
    "SOURCE_FEATURES",
    "WORLD_COLOURS",
    "WORLD_DIRECTIONS",
    "WORLD_FEATURES",
    "WORLD_SHAPES",
    "WORLD_SPEEDS",
    "WORLD_TEXT_VOCAB_SIZE",
    "MediaTokenizers",
    "MotionGridDataCollator",
    "PrepareSummary",
    "PrepareWorker",
    "VideoLaVITInstructionCollator",
    "VideoLaVITPretrainingCollator",
    "WorldQuestion",
    "apply_fsdp2",
    "build_llama_style_tokenizer",
    "build_world_tokenizer",
    "freeze_for_training",
    "load_prepared",
    "make_world_video",
    "motion_grid_dataset",
    "prepare_corpus",
    "read_source",
    "score_world_answer",
    "train_bpe",
    "world_caption",
    "world_dataset",
    "world_questions",
    "world_shape_positions",
    "world_tokenizer_corpus",
    "world_video_frames",
]
