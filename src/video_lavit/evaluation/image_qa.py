"""Open-ended image QA (GQA-style): the same batched, resumable path as open-ended video QA, with `<image>`.

`read_image_qa_dataset` reads any `datasets` source with `question, answer` and the image: an `image` column (the
`Image` feature, or a file name under `image_dir`) or an id column (`image_id`, `imageId`) naming a file in
`image_dir` with any common image extension. `evaluate_image_qa` answers with the GQA post-prompt lmms-eval uses
("Answer the question using a single word or phrase.") and scores by normalized exact match.
"""

from __future__ import annotations

import os

from ..errors import EvaluationDataError
from .video_qa import VideoQASample, evaluate_video_qa, load_evaluation_dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
GQA_POST_PROMPT = "\nAnswer the question using a single word or phrase."
_ID_COLUMNS = ("question_id", "questionId", "id", "index")
_IMAGE_ID_COLUMNS = ("image_id", "imageId")


def find_image(image_dir: str | os.PathLike, name: str) -> str | None:
    """The file of image `name` in `image_dir`: as it is, else with one of `IMAGE_EXTENSIONS`."""
    path = os.path.join(os.fspath(image_dir), str(name))
    if os.path.isfile(path):
        return path
    return next((path + ext for ext in IMAGE_EXTENSIONS if os.path.isfile(path + ext)), None)


def read_image_qa_dataset(
    source, image_dir: str | os.PathLike | None = None, split: str = "test", name: str | None = None
) -> list[VideoQASample]:
    """The samples of an open-ended image QA set (see the module docstring); a missing image or answer is kept as
    the sample's `error` (recorded, not scored).

    Raises:
        `EvaluationDataError`: the source cannot be read, lacks the columns, or ids repeat.
    """
    dataset = load_evaluation_dataset(source, split=split, name=name)
    columns = set(dataset.column_names)
    image_column = "image" if "image" in columns else next((c for c in _IMAGE_ID_COLUMNS if c in columns), None)
    missing = [column for column in ("question", "answer") if column not in columns]
    if missing or image_column is None:
        missing += [] if image_column else ["image (or image_id / imageId)"]
        raise EvaluationDataError(
            f"the dataset lacks the column(s) {', '.join(missing)} of the image QA layout; it has "
            f"{', '.join(dataset.column_names)}."
        )
    id_column = next((column for column in _ID_COLUMNS if column in columns), None)
    samples = []
    for index, row in enumerate(dataset):
        sample_id = str(row[id_column]) if id_column else str(index)
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise EvaluationDataError(f"question {sample_id} has no question text.")
        value, error, image_name = row[image_column], None, str(row.get(image_column, sample_id))
        if value is None or isinstance(value, str):
            if image_dir is None and value and not os.path.isabs(value):
                raise EvaluationDataError("the images are named by file: pass their folder (image_dir).")
            found = find_image(image_dir or "", value) if value else None
            if found is None:
                error = f"image {value!r} not found in {os.fspath(image_dir or '')} (with any of " + (
                    ", ".join(IMAGE_EXTENSIONS) + ")"
                )
            value = found
        else:
            image_name = sample_id
        answer = row["answer"]
        if answer is None or not str(answer).strip():
            error = "no reference answer"
        samples.append(
            VideoQASample(
                id=sample_id,
                video_name=image_name,
                video=None,
                question=row["question"],
                answer="" if answer is None else str(answer),
                error=error,
                image=value if error is None else None,
            )  # fmt: skip
        )
    if len({sample.id for sample in samples}) != len(samples):
        raise EvaluationDataError("the dataset's question ids are not unique.")
    return samples


def evaluate_image_qa(model, processor, samples, output_dir, *, post_prompt: str = GQA_POST_PROMPT, **kwargs) -> dict:
    """Answer and score an open-ended image QA set (`evaluate_video_qa` with `task="image-qa"`; a rerun resumes)."""
    return evaluate_video_qa(model, processor, samples, output_dir, post_prompt=post_prompt, task="image-qa", **kwargs)


__all__ = ["GQA_POST_PROMPT", "IMAGE_EXTENSIONS", "evaluate_image_qa", "find_image", "read_image_qa_dataset"]
