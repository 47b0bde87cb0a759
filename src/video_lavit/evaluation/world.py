"""The procedural world (`video_lavit.training.world`) as a built-in video QA task: every path of open-ended video
QA offline, end to end, with the built-in world model or any checkpoint trained on the world.

`world_qa_samples` writes held-out world videos (a split the world recipe never trains on) and asks each kind of
question about each video; `evaluate_world` answers them with `predict_video_qa` (batched, resumable) and scores
them by normalized exact match, overall and per question kind.
"""

from __future__ import annotations

import os

from ..training.world import world_dataset, world_questions
from .results import evaluation_results, write_results
from .video_qa import VideoQASample, exact_match_metrics, predict_video_qa

WORLD_SPLIT = "evaluation"


def world_qa_samples(
    num_videos: int, video_dir: str | os.PathLike, seed: int = 0, split: str = WORLD_SPLIT
) -> list[VideoQASample]:
    """`num_videos` world videos in `video_dir` (balanced, reused when present), each asked every question kind."""
    rows = world_dataset(num_videos, video_dir, seed=seed, split=split)
    samples = []
    for row in rows:
        for kind, question in world_questions().items():
            samples.append(
                VideoQASample(
                    id=f"{row['id']}-{kind}",
                    video_name=os.path.basename(row["video"]),
                    video=row["video"],
                    question=question.question,
                    answer=row[kind],
                )
            )
    return samples


def evaluate_world(
    model,
    processor,
    output_dir: str | os.PathLike,
    *,
    num_videos: int = 32,
    seed: int = 0,
    batch_size: int = 8,
    checkpoint: str = "",
    progress: bool = True,
) -> dict:
    """Answer and score the world task; writes `videos/`, `predictions.jsonl` and `results.json` in `output_dir`.

    Returns:
        The results dict (`video_lavit.evaluation.results`); its metrics are `exact_match` overall and
        `exact_match_{kind}` per question kind.
    """
    output_dir = os.fspath(output_dir)
    samples = world_qa_samples(num_videos, os.path.join(output_dir, "videos"), seed=seed)
    predictions = os.path.join(output_dir, "predictions.jsonl")
    records = predict_video_qa(model, processor, samples, predictions, batch_size=batch_size, max_new_tokens=4,
                               progress=progress)  # fmt: skip
    metrics = {"exact_match": exact_match_metrics(records)}
    for kind in world_questions():
        metrics[f"exact_match_{kind}"] = exact_match_metrics([r for r in records if r["id"].endswith(f"-{kind}")])
    parameters = {
        "num_videos": num_videos,
        "seed": seed,
        "split": WORLD_SPLIT,
        "questions": {kind: question.question for kind, question in world_questions().items()},
        "generation": {"do_sample": False, "max_new_tokens": 4},
        "batch_size": batch_size,
        "prompt": "<video>\\n{question} (the processor's chat template)",
    }
    results = evaluation_results(
        "world",
        checkpoint,
        metrics,
        parameters,
        per_sample_path=predictions,
        dataset={"name": "video-lavit procedural world", "type": "video-lavit-world", "split": WORLD_SPLIT},
    )
    write_results(output_dir, results)
    return results


__all__ = ["WORLD_SPLIT", "evaluate_world", "world_qa_samples"]
