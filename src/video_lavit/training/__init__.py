"""Training helpers: datasets of motion grids and collators for `transformers.Trainer`."""

from .motion_tokenizer import MotionGridDataCollator, motion_grid_dataset

__all__ = ["MotionGridDataCollator", "motion_grid_dataset"]
