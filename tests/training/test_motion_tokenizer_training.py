import torch
from tiny_models import tiny_motion_tokenizer_config
from transformers import Trainer, TrainingArguments

from video_lavit import VideoLaVITMotionTokenizer, make_sample_video
from video_lavit.training import MotionGridDataCollator, motion_grid_dataset


def test_trainer_lowers_reconstruction_loss(tmp_path):
    videos = [
        make_sample_video(
            tmp_path / f"v{index}.mp4", width=64, height=48, seconds=10.0, fps=24, shift=shift, seed=index
        )
        for index, shift in enumerate([(2, 1), (-2, 1)])
    ]
    dataset = motion_grid_dataset(videos)
    assert len(dataset) == 4
    collator = MotionGridDataCollator()
    batch = collator([dataset[index] for index in range(len(dataset))])

    torch.manual_seed(0)
    config = tiny_motion_tokenizer_config(use_ema_codebook=True, dead_code_threshold=0.1, blocks_per_stage=1)
    model = VideoLaVITMotionTokenizer(config)

    def reconstruction_loss():
        model.eval()
        with torch.no_grad():
            return model(**batch).reconstruction_loss.item()

    before = reconstruction_loss()
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=2,
        max_steps=20,
        learning_rate=5e-2,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=4,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator).train()
    after = reconstruction_loss()
    print("reconstruction loss before and after training:", before, after)
    assert after < 0.95 * before, (before, after)
