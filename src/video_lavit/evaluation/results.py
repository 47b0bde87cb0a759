"""One results JSON per evaluation run, and its figures as a model card's evaluation results.

`write_results` writes `results.json` (atomically): the task, the checkpoint, every protocol parameter, the path of
the per-sample records, the aggregate metrics, and the versions of the package and of the libraries that made the
numbers. `card_eval_results` turns results into `huggingface_hub.EvalResult`s, the model card data that the Hub
shows and that publishing writes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata

from ..errors import InvalidInputError, OutputError
from ..files import replace_file

RESULTS_NAME = "results.json"
_LIBRARIES = ("video-lavit", "torch", "transformers", "diffusers", "datasets", "accelerate", "av", "huggingface_hub")


def library_versions() -> dict[str, str | None]:
    """The installed versions of the package and of the libraries an evaluation depends on, and Python's."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def evaluation_results(
    task: str,
    checkpoint: str,
    metrics: dict,
    parameters: dict,
    per_sample_path: str | None = None,
    dataset: dict | None = None,
) -> dict:
    """The results of one run as a JSON-ready dict.

    Args:
        task (`str`): the task name (e.g. `"video-qa"`).
        checkpoint (`str`): the evaluated model folder or Hub id.
        metrics (`dict`): aggregate figures, by protocol (e.g. `{"exact_match": {...}, "gpt_judge": {...}}`).
        parameters (`dict`): every setting that changes the figures (prompt, generation, clips, judge, ...).
        per_sample_path (`str`, *optional*): the per-sample records (predictions, verdicts).
        dataset (`dict`, *optional*): `{"name", "type", "split", "source"}` of the evaluation set.
    """
    if not isinstance(metrics, dict) or not isinstance(parameters, dict):
        raise InvalidInputError("metrics and parameters must be dicts.")
    return {
        "task": task,
        "checkpoint": checkpoint,
        "dataset": dataset or {},
        "parameters": parameters,
        "metrics": metrics,
        "per_sample_path": per_sample_path,
        "versions": library_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(output_dir: str | os.PathLike, results: dict, name: str = RESULTS_NAME) -> str:
    """Write `results` as `output_dir/name` (whole or not at all); returns its path."""
    path = os.path.join(os.fspath(output_dir), name)
    try:
        os.makedirs(os.fspath(output_dir), exist_ok=True)
        data = json.dumps(results, indent=2, default=str).encode("utf-8")
    except OSError as error:
        raise OutputError(f"{os.fspath(output_dir)}: cannot create the results folder ({error}).") from error
    with replace_file(path) as file:
        file.write(data)
    return path


def card_eval_results(results: dict) -> list:
    """`huggingface_hub.EvalResult`s of one results dict: one per numeric metric of each protocol.

    The metric type is `"{protocol}/{metric}"` (e.g. `"gpt_judge/accuracy"`), its name says the protocol and, for
    the judge, the judge model; the dataset is the results' `dataset`.
    """
    from huggingface_hub import EvalResult

    dataset = results.get("dataset") or {}
    judge_model = (results.get("parameters") or {}).get("judge", {}).get("model")
    entries = []
    for protocol, values in (results.get("metrics") or {}).items():
        if not isinstance(values, dict):
            continue
        for metric, value in values.items():
            if metric not in ("accuracy", "score") or not isinstance(value, (int, float)):
                continue
            name = f"{protocol} {metric}" + (f" ({judge_model})" if protocol == "gpt_judge" and judge_model else "")
            entries.append(
                EvalResult(
                    task_type=results.get("hub_task_type", "video-text-to-text"),
                    dataset_type=dataset.get("type") or dataset.get("name") or results["task"],
                    dataset_name=dataset.get("name") or results["task"],
                    dataset_split=dataset.get("split"),
                    metric_type=f"{protocol}/{metric}",
                    metric_value=float(value),
                    metric_name=name,
                )
            )
    return entries


__all__ = ["RESULTS_NAME", "card_eval_results", "evaluation_results", "library_versions", "write_results"]
