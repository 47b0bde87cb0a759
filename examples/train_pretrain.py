"""Stage 2: pre-train a Video-LaVIT generation checkpoint on prepared captioned videos (and plain text).

    video-lavit prepare captions.csv --output prepared/webvid --tokenizers converted/generation
    python examples/train_pretrain.py --model converted/generation --data prepared/webvid --output-dir runs/pretrain

Each sample is laid out `[video, text]` or `[text, video]` (drawn per sample, seeded), and the loss covers the text,
the markers, and the keyframe and motion codes. The tokenizers stay frozen; the step is the language model's alone,
since the codes were computed by `video-lavit prepare`. The same run from a YAML file:
`video-lavit train pretrain examples/configs/pretrain.yaml`.
"""

import argparse

import datasets
from transformers import Trainer, TrainingArguments

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.training import VideoLaVITPretrainingCollator, freeze_for_training, load_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a converted generation checkpoint folder")
    parser.add_argument("--data", required=True, nargs="+", help="prepared corpus folders")
    parser.add_argument("--text-data", nargs="*", default=[], help="prepared plain-text corpora to mix in")
    parser.add_argument("--text-probability", type=float, default=0.1)
    parser.add_argument("--output-dir", default="runs/pretrain")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cpu", action="store_true", help="train on the CPU in float32 (default: GPU, bf16)")
    args = parser.parse_args()

    model = VideoLaVITForConditionalGeneration.from_pretrained(args.model)
    processor = VideoLaVITProcessor.from_pretrained(args.model)
    freeze_for_training(model)
    dataset = datasets.concatenate_datasets([load_prepared(folder) for folder in args.data])
    if args.text_data:
        text = datasets.concatenate_datasets([load_prepared(folder) for folder in args.text_data])
        dataset = datasets.interleave_datasets(
            [dataset, text], probabilities=[1 - args.text_probability, args.text_probability], seed=0
        )
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=4,
        learning_rate=2e-5,
        lr_scheduler_type="cosine",
        warmup_steps=50,
        bf16=not args.cpu,
        use_cpu=args.cpu,
        activation_checkpointing=True,
        remove_unused_columns=False,  # the collator reads the prepared rows' columns
        logging_steps=10,
        save_steps=500,
        report_to=[],
    )
    collator = VideoLaVITPretrainingCollator(processor, max_length=args.max_length, seed=training_args.seed)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=dataset, data_collator=collator, processing_class=processor
    )
    trainer.train()
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
