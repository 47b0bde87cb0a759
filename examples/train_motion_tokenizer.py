"""Train a small motion tokenizer from scratch on procedurally generated videos with `transformers.Trainer`.

    python examples/train_motion_tokenizer.py --steps 200 --output-dir motion-tokenizer-small

The videos are textures sliding in random directions (so their motion is known); each becomes a few 24-frame motion
grids through `VideoLaVITVideoProcessor`. The EMA codebook with dead-code restarts keeps codes in use.
"""

import argparse
import os
import tempfile

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from video_lavit import VideoLaVITMotionTokenizer, VideoLaVITMotionTokenizerConfig, make_sample_video
from video_lavit.training import MotionGridDataCollator, motion_grid_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8, help="procedural videos to generate")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--output-dir", default="motion-tokenizer-small")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        videos = [
            make_sample_video(
                os.path.join(folder, f"video_{index}.mp4"),
                width=96,
                height=64,
                seconds=10.0,
                shift=tuple(int(v) for v in rng.integers(-3, 4, size=2)),
                seed=index,
            )
            for index in range(args.videos)
        ]
        dataset = motion_grid_dataset(videos)
    print(f"{len(dataset)} clips from {args.videos} videos")

    torch.manual_seed(0)
    config = VideoLaVITMotionTokenizerConfig(
        hidden_size=args.hidden_size,
        num_attention_heads=4,
        codebook_size=64,
        code_dim=8,
        use_ema_codebook=True,
        dead_code_threshold=0.05,
    )
    model = VideoLaVITMotionTokenizer(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=4,
        max_steps=args.steps,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, args.steps // 20),
        logging_steps=max(1, args.steps // 10),
        save_strategy="no",
        report_to=[],
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=MotionGridDataCollator())
    trainer.train()
    model.save_pretrained(args.output_dir)
    print(f"saved to {args.output_dir}")


if __name__ == "__main__":
    main()
