"""Stage 3: instruction-tune a Video-LaVIT checkpoint with PEFT LoRA on prepared conversations.

    video-lavit prepare VideoChatGPT_100K.json --media-root videos/ --output prepared/vcg \
        --tokenizers converted/understanding
    python examples/train_sft_lora.py --model converted/understanding --data prepared/vcg --output-dir runs/sft-lora

Conversations (LLaVA / Video-ChatGPT JSON) are rendered with the processor's chat template, as at inference, and
the loss covers only the assistant replies. LoRA adapts the decoder's linear layers; `--trainable-tokens markers`
also trains the embedding and output rows of `[IMG] [/IMG] [MOV] [/MOV]`. The adapter is saved in `--output-dir`,
the merged model in `--output-dir/merged`. The same run from a YAML file:
`video-lavit train sft examples/configs/sft_lora.yaml`. For QLoRA on a GPU see `video_lavit.training.lora`.
"""

import argparse
import os

import datasets
from peft import get_peft_model
from transformers import Trainer, TrainingArguments

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.training import VideoLaVITInstructionCollator, freeze_for_training, load_prepared
from video_lavit.training.lora import TRAINABLE_TOKEN_CHOICES, video_lavit_lora_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a converted checkpoint folder")
    parser.add_argument("--data", required=True, nargs="+", help="prepared conversation corpus folders")
    parser.add_argument("--output-dir", default="runs/sft-lora")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--trainable-tokens", choices=TRAINABLE_TOKEN_CHOICES, default="none")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU in float32 (default: GPU, bf16)")
    args = parser.parse_args()

    model = VideoLaVITForConditionalGeneration.from_pretrained(args.model)
    processor = VideoLaVITProcessor.from_pretrained(args.model)
    freeze_for_training(model)
    model = get_peft_model(
        model,
        video_lavit_lora_config(model, r=args.rank, lora_alpha=2 * args.rank, trainable_tokens=args.trainable_tokens),
    )
    model.enable_input_require_grads()  # activation checkpointing with frozen embeddings
    model.print_trainable_parameters()
    dataset = datasets.concatenate_datasets([load_prepared(folder) for folder in args.data])
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=4,
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=30,
        bf16=not args.cpu,
        use_cpu=args.cpu,
        activation_checkpointing=True,
        remove_unused_columns=False,  # the collator reads the prepared rows' columns
        logging_steps=10,
        save_steps=500,
        report_to=[],
    )
    collator = VideoLaVITInstructionCollator(processor, max_length=args.max_length)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=dataset, data_collator=collator, processing_class=processor
    )
    trainer.train()
    model.save_pretrained(args.output_dir)  # the adapter (and any trained token rows) only
    merged = model.merge_and_unload()
    merged.save_pretrained(os.path.join(args.output_dir, "merged"))
    processor.save_pretrained(os.path.join(args.output_dir, "merged"))


if __name__ == "__main__":
    main()
