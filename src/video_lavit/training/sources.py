"""Training corpora read into one row shape: captioned videos and images, conversations, and plain text.

Every source becomes a `datasets.Dataset` with the columns of `SOURCE_FEATURES`:

| column | meaning |
|---|---|
| `id` | the sample's id (from the source, else its row number) |
| `media` | `"video"`, `"image"` or `"text"` (no media: a plain-text sample) |
| `path` | the media file (absolute, or as the source gave it when it cannot be resolved); `""` for text |
| `media_bytes` | the file's bytes when the source holds them instead of a path (`datasets` columns), else None |
| `text` | the caption, or the plain text |
| `conversations` | `[{"from": "human" | "gpt", "value": str}]` for instruction data, else `[]` |

What is read (`read_source`):
- a CSV / JSONL / JSON table of captioned media: `video, caption` (or `image, caption`; `text` / `name` also name
  the caption), or WebVid's `videoid, name, contentUrl` (+ `page_dir`), whose videos are looked up locally as
  `[page_dir/]videoid.mp4` beside the table (nothing is downloaded);
- the LLaVA / Video-ChatGPT conversation JSON: a list of `{id, image | video, conversations: [{from, value}]}`
  with `<image>` / `<video>` placeholders in the human turns;
- a folder of videos (each caption from a `.txt` file of the same name beside it, if any), or a folder written by
  `datasets.Dataset.save_to_disk`;
- any `datasets.Dataset` with a `Video` or `Image` column (decoded or not) and an optional caption column.
Plain-text rows (a `text` column and no media column, RedPajama-style) are read as `media="text"`.

Paths are resolved against `media_root` (default: the folder of the table or JSON). A missing file is not an error
here: the preparation step records it in its error report and goes on.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping

import datasets

from ..errors import InvalidInputError

SOURCE_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "media": datasets.Value("string"),
        "path": datasets.Value("string"),
        "media_bytes": datasets.Value("binary"),
        "text": datasets.Value("string"),
        "conversations": datasets.List({"from": datasets.Value("string"), "value": datasets.Value("string")}),
    }
)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".gif")
_CAPTION_COLUMNS = ("caption", "text", "name", "title", "description")
_VIDEO_COLUMNS = ("video", "video_path", "path", "file", "filename", "video_name")
_IMAGE_COLUMNS = ("image", "image_path")


def read_source(source, media_root: str | os.PathLike | None = None) -> datasets.Dataset:
    """Read a corpus (a path, or a `datasets.Dataset`) into rows of `SOURCE_FEATURES` (see the module docstring).

    Raises:
        `InvalidInputError`: the source does not exist, is not one of the formats read, or has no usable column.
    """
    if isinstance(source, datasets.DatasetDict):
        raise InvalidInputError(
            f"got a DatasetDict with splits {list(source)}; pass one split, e.g. dataset['train']."
        )
    if isinstance(source, datasets.Dataset):
        return _from_dataset(source)
    if isinstance(source, (list, tuple)):
        return _rows_dataset(
            [_caption_row(str(index), "video", os.fspath(path), "") for index, path in enumerate(source)]
        )
    name = os.fsdecode(os.fspath(source))
    if not os.path.exists(name):
        raise InvalidInputError(f"{name}: no such file or folder; pass a CSV, JSONL or JSON file, or a folder.")
    root = os.fspath(media_root) if media_root is not None else None
    if os.path.isdir(name):
        if os.path.exists(os.path.join(name, "dataset_info.json")) or os.path.exists(
            os.path.join(name, "dataset_dict.json")
        ):
            loaded = datasets.load_from_disk(name)
            return read_source(loaded, media_root)
        return _from_folder(name)
    root = root or os.path.dirname(os.path.abspath(name))
    extension = os.path.splitext(name)[1].lower()
    if extension == ".csv":
        with open(name, newline="", encoding="utf-8") as file:
            records = list(csv.DictReader(file))
        return _from_records(records, root, name)
    if extension in (".jsonl", ".ndjson"):
        records = []
        with open(name, encoding="utf-8") as file:
            for line_number, line in enumerate(file, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise InvalidInputError(f"{name}: line {line_number} is not JSON ({error}).") from error
        return _from_records(records, root, name)
    if extension == ".json":
        try:
            with open(name, encoding="utf-8") as file:
                records = json.load(file)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"{name}: not valid JSON ({error}).") from error
        if not isinstance(records, list):
            raise InvalidInputError(f"{name}: expected a JSON list of samples, got a {type(records).__name__}.")
        return _from_records(records, root, name)
    raise InvalidInputError(
        f"{name}: not a corpus this package reads; pass a .csv, .jsonl or .json file, a folder of videos, or a "
        "folder saved by datasets.Dataset.save_to_disk."
    )


def _caption_row(sample_id: str, media: str, path: str, text: str, media_bytes: bytes | None = None) -> dict:
    return {
        "id": sample_id,
        "media": media,
        "path": path,
        "media_bytes": media_bytes,
        "text": text,
        "conversations": [],
    }


def _rows_dataset(rows: list[dict]) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows, features=SOURCE_FEATURES)


def _resolve(root: str, path: str) -> str:
    path = os.path.expanduser(str(path))
    return path if os.path.isabs(path) else os.path.join(root, path)


def _from_folder(folder: str) -> datasets.Dataset:
    rows = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        stem, extension = os.path.splitext(entry)
        if not os.path.isfile(path) or extension.lower() not in VIDEO_EXTENSIONS:
            continue
        caption_file = os.path.join(folder, stem + ".txt")
        caption = ""
        if os.path.exists(caption_file):
            with open(caption_file, encoding="utf-8") as file:
                caption = file.read().strip()
        rows.append(_caption_row(stem, "video", os.path.abspath(path), caption))
    if not rows:
        raise InvalidInputError(
            f"{folder}: holds no video file ({', '.join(VIDEO_EXTENSIONS)}); put the videos there, with optional "
            "captions in .txt files of the same name."
        )
    return _rows_dataset(rows)


def _first(record: Mapping, names: Iterable[str]) -> str | None:
    for column in names:
        if record.get(column) not in (None, ""):
            return column
    return None


def _from_records(records: list, root: str, name: str) -> datasets.Dataset:
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInputError(f"{name}: sample {index} is a {type(record).__name__}, not an object.")
        sample_id = str(record.get("id", record.get("videoid", record.get("question_id", index))))
        if "conversations" in record:
            rows.append(_conversation_row(record, sample_id, root, name))
        elif "videoid" in record and "contentUrl" in record:  # WebVid
            folder = _resolve(root, str(record["page_dir"])) if record.get("page_dir") else root
            path = os.path.join(folder, f"{record['videoid']}.mp4")
            rows.append(_caption_row(sample_id, "video", path, str(record.get("name") or "")))
        else:
            caption_column = _first(record, _CAPTION_COLUMNS)
            caption = str(record[caption_column]) if caption_column else ""
            video_column = _first(record, _VIDEO_COLUMNS)
            image_column = _first(record, _IMAGE_COLUMNS)
            if video_column is not None:
                rows.append(_caption_row(sample_id, "video", _resolve(root, record[video_column]), caption))
            elif image_column is not None:
                rows.append(_caption_row(sample_id, "image", _resolve(root, record[image_column]), caption))
            elif caption_column is not None:
                rows.append(_caption_row(sample_id, "text", "", caption))
            else:
                raise InvalidInputError(
                    f"{name}: sample {sample_id} has none of the columns read: a video ({', '.join(_VIDEO_COLUMNS)}), "
                    f"an image ({', '.join(_IMAGE_COLUMNS)}), a caption or text ({', '.join(_CAPTION_COLUMNS)}), "
                    "WebVid's videoid/name/contentUrl, or conversations."
                )
    if not rows:
        raise InvalidInputError(f"{name}: holds no sample.")
    return _rows_dataset(rows)


def _conversation_row(record: Mapping, sample_id: str, root: str, name: str) -> dict:
    turns = record["conversations"]
    if not isinstance(turns, list) or not all(
        isinstance(turn, Mapping) and isinstance(turn.get("value"), str) and turn.get("from") in ("human", "gpt")
        for turn in turns
    ):
        raise InvalidInputError(
            f"{name}: sample {sample_id}: conversations must be a list of {{'from': 'human' | 'gpt', 'value': str}}."
        )
    media, path = "text", ""
    if record.get("video"):
        media, path = "video", _resolve(root, record["video"])
    elif record.get("image"):
        media, path = "image", _resolve(root, record["image"])
    return {
        "id": sample_id,
        "media": media,
        "path": path,
        "media_bytes": None,
        "text": "",
        "conversations": [{"from": turn["from"], "value": turn["value"]} for turn in turns],
    }


def _from_dataset(dataset: datasets.Dataset) -> datasets.Dataset:
    if set(SOURCE_FEATURES) <= set(dataset.column_names):
        return dataset.select_columns(list(SOURCE_FEATURES)).cast(SOURCE_FEATURES)
    features = dataset.features
    video_column = next((column for column, kind in features.items() if isinstance(kind, datasets.Video)), None)
    image_column = next((column for column, kind in features.items() if isinstance(kind, datasets.Image)), None)
    media_column, media = (video_column, "video") if video_column else (image_column, "image")
    if media_column is None:
        text_column = _first({column: True for column in dataset.column_names}, ("text", "caption", "content"))
        if text_column is None:
            raise InvalidInputError(
                f"the dataset has no Video or Image column and no text column (columns: {dataset.column_names}); "
                "cast the media column with datasets.Video(decode=False) or datasets.Image()."
            )
        ids = dataset["id"] if "id" in dataset.column_names else range(len(dataset))
        return _rows_dataset(
            [_caption_row(str(sample_id), "text", "", text) for sample_id, text in zip(ids, dataset[text_column])]
        )
    kind = datasets.Video(decode=False) if media == "video" else datasets.Image(decode=False)
    dataset = dataset.cast_column(media_column, kind)
    caption_column = _first({column: True for column in dataset.column_names}, _CAPTION_COLUMNS)
    has_conversations = "conversations" in dataset.column_names

    def convert(row, index):
        value = row[media_column] or {}
        path, data = value.get("path") or "", value.get("bytes")
        row_media = media if path or data else "text"  # a sample without media (e.g. a text-only conversation)
        if has_conversations:
            record = {"conversations": row["conversations"]}
            if row_media != "text":
                record[media] = path or "<bytes>"
            result = _conversation_row(record, "", "", "the dataset")
            result["path"] = path
        else:
            result = _caption_row("", row_media, path, str(row[caption_column]) if caption_column else "")
        result["id"] = str(row["id"]) if "id" in row and row["id"] is not None else str(index)
        result["media_bytes"] = data
        return result

    return dataset.map(
        convert, with_indices=True, remove_columns=dataset.column_names, features=SOURCE_FEATURES, desc="reading"
    )


__all__ = ["SOURCE_FEATURES", "VIDEO_EXTENSIONS", "read_source"]
