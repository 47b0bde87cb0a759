"""The row-by-row safetensors writer behind `video-lavit tokenize`: an ordinary safetensors file, or nothing."""

import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from video_lavit.errors import InvalidInputError
from video_lavit.processing.clip_export import SafetensorsRowWriter


def test_rows_written_one_by_one_make_an_ordinary_safetensors_file(tmp_path):
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "pixels": torch.randn(5, 3, 4, 4, generator=generator),
        "half": torch.randn(5, 7, generator=generator).to(torch.bfloat16),
        "ids": torch.randint(0, 1000, (5, 135), generator=generator),
        "times": torch.rand(5, generator=generator, dtype=torch.float64),
        "flags": torch.rand(5, 2, generator=generator) > 0.5,
    }
    path = tmp_path / "clips.safetensors"
    writer = SafetensorsRowWriter(
        str(path), {name: (value.dtype, tuple(value.shape)) for name, value in tensors.items()}, {"source": "x.mp4"}
    )
    for index in reversed(range(5)):  # any order
        for name, value in tensors.items():
            writer.write_row(name, index, value[index])
    assert not path.exists()  # nothing looks finished before the commit
    writer.commit()
    loaded = load_file(path)
    assert set(loaded) == set(tensors)
    for name, value in tensors.items():
        assert loaded[name].dtype == value.dtype and torch.equal(loaded[name], value)
    with safe_open(path, "pt") as handle:
        assert handle.metadata() == {"source": "x.mp4"}
    assert os.listdir(tmp_path) == ["clips.safetensors"]


def test_wrong_rows_are_refused_and_an_aborted_file_leaves_nothing(tmp_path):
    writer = SafetensorsRowWriter(str(tmp_path / "clips.safetensors"), {"ids": (torch.int64, (2, 3))}, {})
    with pytest.raises(InvalidInputError, match="expected"):
        writer.write_row("ids", 0, torch.zeros(4))
    with pytest.raises(InvalidInputError, match="expected"):
        writer.write_row("ids", 2, torch.zeros(3))
    writer.abort()
    assert os.listdir(tmp_path) == []
