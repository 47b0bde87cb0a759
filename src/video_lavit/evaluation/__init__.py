"""Evaluation on `datasets` sources, with the protocols written down: one module per task family.

- `video_qa`: open-ended video QA (Video-ChatGPT's two-file layout and the Hub layout lmms-eval uses), batched and
  resumable predictions, normalized exact match;
- `judge`: the GPT-judge protocol against any OpenAI-compatible endpoint (concurrent, retried, cached);
- `multiple_choice`: Video-MME, MVBench, EgoSchema, NExT-QA MC and MMBench-style sets with lmms-eval's prompts,
  answered by letter extraction or option log-likelihood, accuracy overall and per category;
- `image_qa`: open-ended image QA (GQA-style) through the same path as video QA, with `<image>`;
- `reconstruction`: motion end-point error, code usage and perplexity, PSNR / SSIM of detokenized clips;
- `text_to_video`: CLIPSIM and FVD of generated videos, with the CLIP and I3D the user gives;
- `world`: the procedural world as a built-in task, offline end to end;
- `results`: one results JSON per run, and its figures as model card evaluation results.

`video-lavit evaluate TASK ...` runs them from the command line.
"""

from .image_qa import evaluate_image_qa, read_image_qa_dataset
from .judge import GPTJudge, JudgeVerdict, judge_metrics, parse_judge_reply
from .multiple_choice import (
    MultipleChoiceSample,
    evaluate_multiple_choice,
    extract_choice,
    multiple_choice_metrics,
    predict_multiple_choice,
    read_multiple_choice_dataset,
)
from .reconstruction import evaluate_reconstruction, psnr, ssim
from .results import card_eval_results, evaluation_results, write_results
from .text_to_video import (
    clip_similarity,
    evaluate_text_to_video,
    frechet_distance,
    frechet_video_distance,
    generate_text_to_video_samples,
    load_clip,
    load_i3d,
)
from .video_qa import (
    VideoQASample,
    exact_match_metrics,
    normalize_answer,
    predict_video_qa,
    read_video_chatgpt,
    read_video_qa_dataset,
)
from .world import evaluate_world, world_qa_samples

__all__ = [
    "GPTJudge",
    "JudgeVerdict",
    "MultipleChoiceSample",
    "VideoQASample",
    "card_eval_results",
    "clip_similarity",
    "evaluate_image_qa",
    "evaluate_multiple_choice",
    "evaluate_reconstruction",
    "evaluate_text_to_video",
    "evaluate_world",
    "evaluation_results",
    "exact_match_metrics",
    "extract_choice",
    "frechet_distance",
    "frechet_video_distance",
    "generate_text_to_video_samples",
    "judge_metrics",
    "load_clip",
    "load_i3d",
    "multiple_choice_metrics",
    "normalize_answer",
    "parse_judge_reply",
    "predict_multiple_choice",
    "predict_video_qa",
    "psnr",
    "read_image_qa_dataset",
    "read_multiple_choice_dataset",
    "read_video_chatgpt",
    "read_video_qa_dataset",
    "ssim",
    "world_qa_samples",
    "write_results",
]
