"""Evaluation on `datasets` sources, with the protocols written down: one module per task family.

- `video_qa`: open-ended video QA (Video-ChatGPT's two-file layout and the Hub layout lmms-eval uses), batched and
  resumable predictions, normalized exact match;
- `judge`: the GPT-judge protocol against any OpenAI-compatible endpoint (concurrent, retried, cached);
- `world`: the procedural world as a built-in task, offline end to end;
- `results`: one results JSON per run, and its figures as model card evaluation results.

`video-lavit evaluate TASK ...` runs them from the command line.
"""

from .judge import GPTJudge, JudgeVerdict, judge_metrics, parse_judge_reply
from .results import card_eval_results, evaluation_results, write_results
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
    "VideoQASample",
    "card_eval_results",
    "evaluate_world",
    "evaluation_results",
    "exact_match_metrics",
    "judge_metrics",
    "normalize_answer",
    "parse_judge_reply",
    "predict_video_qa",
    "read_video_chatgpt",
    "read_video_qa_dataset",
    "world_qa_samples",
    "write_results",
]
