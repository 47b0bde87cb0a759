"""Training helpers: freezing, datasets of motion grids and collators for `transformers.Trainer`."""

from .freezing import freeze_for_training
from .motion_tokenizer import MotionGridDataCollator, motion_grid_dataset

__all__ = ["MotionGridDataCollator", "freeze_for_training", "motion_grid_dataset"]
