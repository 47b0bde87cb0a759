"""Converters never lose data, never leave a half-written folder that loads, and refuse damaged checkpoints.

Uses the tiny reference motion tokenizer of tests/fixtures/reference/motion_tokenizer and the tiny release folder of
the detokenizer tests.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from video_lavit import CheckpointConversionError, VideoLaVITMotionTokenizer, convert_motion_tokenizer
from video_lavit.cli import main
from video_lavit.conversion.detokenizer import convert_detokenizer
from video_lavit.errors import CheckpointLoadError, OutputError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference")
CHECKPOINT = os.path.join(FIXTURES, "motion_tokenizer", "tiny_motion_tokenizer.bin")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipelines"))
from test_pipeline_video_lavit import HEADS, write_release_folder  # noqa: E402


def reference_state():
    return torch.load(CHECKPOINT, weights_only=True)


def test_a_folder_with_other_files_is_never_emptied(tmp_path):
    target = tmp_path / "checkpoint"
    target.mkdir()
    shards = {
        name: os.urandom(64) for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    }
    for name, data in shards.items():
        (target / name).write_bytes(data)
    with pytest.raises(OutputError, match="holds files.*overwrite"):
        convert_motion_tokenizer(CHECKPOINT, target, num_attention_heads=2)
    assert {name: (target / name).read_bytes() for name in os.listdir(target)} == shards
    assert main(["convert", "motion-tokenizer", "--checkpoint", CHECKPOINT, "--output", str(target)]) == 1
    assert sorted(os.listdir(target)) == sorted(shards)
    # Asked to, the folder is replaced as a whole by the new conversion.
    convert_motion_tokenizer(CHECKPOINT, target, num_attention_heads=2, overwrite=True)
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors"]
    assert VideoLaVITMotionTokenizer.from_pretrained(target).config.num_attention_heads == 2
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []  # nothing left beside it
    from video_lavit.files import current_umask

    assert os.stat(target).st_mode & 0o777 == 0o777 & ~current_umask()  # an ordinary folder, not a private one
    assert os.stat(target / "model.safetensors").st_mode & 0o777 == 0o666 & ~current_umask()


def test_the_source_is_never_the_target(tmp_path):
    release = write_release_folder(tmp_path / "release")
    before = {path: os.path.getsize(path) for path in release.rglob("*") if path.is_file()}
    for target in (release, release / ".."):  # the release folder itself, or a folder holding it
        with pytest.raises(OutputError, match="input"):
            convert_detokenizer(release, target, overwrite=True, **HEADS)
    assert {path: os.path.getsize(path) for path in release.rglob("*") if path.is_file()} == before
    copy = tmp_path / "motion_tokenizer.bin"
    shutil.copy(CHECKPOINT, copy)
    with pytest.raises(OutputError, match="input"):
        convert_motion_tokenizer(copy, tmp_path, num_attention_heads=2, overwrite=True)
    assert copy.read_bytes() == open(CHECKPOINT, "rb").read()
    with pytest.raises(OutputError, match="is a file"):
        convert_motion_tokenizer(CHECKPOINT, copy, num_attention_heads=2)
    # An input named through a link inside the target would go with the target.
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "notes.txt").write_text("mine")
    os.symlink(copy, linked / "checkpoint.bin")
    with pytest.raises(OutputError, match="input"):
        convert_motion_tokenizer(linked / "checkpoint.bin", linked, num_attention_heads=2, overwrite=True)
    assert (linked / "notes.txt").read_text() == "mine" and (linked / "checkpoint.bin").exists()


def _killed_while_saving(self, folder, **kwargs):
    self.config.save_pretrained(folder)  # the new config is written, the weights not yet
    os.kill(os.getpid(), signal.SIGKILL)


def _convert_and_get_killed(target) -> None:
    torch.set_num_threads(1)  # the parent's OpenMP threads did not come with the fork
    VideoLaVITMotionTokenizer.save_pretrained = _killed_while_saving  # in the forked child only
    convert_motion_tokenizer(CHECKPOINT, target, num_attention_heads=1, overwrite=True)


def killed_conversion(target) -> int:
    """A conversion into `target` in a forked process (the imports are inherited) that is killed while it writes;
    its exit code."""
    child = multiprocessing.get_context("fork").Process(target=_convert_and_get_killed, args=(str(target),))
    child.start()
    child.join(timeout=300)
    if child.is_alive():  # hung: end it, and fail below
        child.kill()
        child.join()
        return None
    return child.exitcode


def test_a_conversion_killed_while_writing_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "converted"
    convert_motion_tokenizer(CHECKPOINT, target, num_attention_heads=2)
    before = load_file(target / "model.safetensors")
    assert killed_conversion(target) == -signal.SIGKILL
    reloaded = VideoLaVITMotionTokenizer.from_pretrained(target)  # the old conversion, whole
    assert reloaded.config.num_attention_heads == 2
    assert all(torch.equal(value, reloaded.state_dict()[key]) for key, value in before.items())
    # A conversion killed before the first one finished leaves no folder that loads.
    fresh = tmp_path / "fresh"
    assert killed_conversion(fresh) == -signal.SIGKILL
    assert not fresh.exists()
    with pytest.raises(CheckpointLoadError, match="no such folder"):
        VideoLaVITMotionTokenizer.from_pretrained(fresh)
    convert_motion_tokenizer(CHECKPOINT, fresh, num_attention_heads=2)  # the leftover hidden folder is no obstacle


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda state: state.update({"encoder.norm.weight": state["encoder.norm.weight"] * float("nan")}), "NaN"),
        (
            lambda state: state.update(
                {"encoder.norm.bias": torch.full_like(state["encoder.norm.bias"], float("inf"))}
            ),
            "infinite",
        ),
        (lambda state: state.update({"encoder.norm.weight": state["encoder.norm.weight"].long()}), "int64"),
        (lambda state: state.update({"quantize.embedding.weight": torch.tensor(1.0)}), "shape ()"),
        (lambda state: state.update({"encoder.in_proj.bias": torch.zeros(0)}), "shape (0,)"),
        (lambda state: state.update({7: torch.zeros(2)}), "key of type int"),
        (lambda state: state.update({"encoder.norm.weight": "weights"}), "not a tensor"),
        (lambda state: state.update({"encoder.norm.bias": torch.full((16,), 1e39, dtype=torch.float64)}), "float32"),
        (lambda state: state.update({"encoder.norm.bias": torch.zeros(16).to(torch.float8_e4m3fn)}), "float8"),
        (lambda state: state.update({"encoder.norm.bias": torch.zeros(16).to_sparse()}), "sparse"),
    ],
)
def test_damaged_reference_checkpoints_are_refused(tmp_path, damage, fragment):
    state = reference_state()
    damage(state)
    path = tmp_path / "damaged.bin"
    torch.save(state, path)
    with pytest.raises(CheckpointConversionError, match=re.escape(fragment)) as raised:
        convert_motion_tokenizer(path, tmp_path / "out", num_attention_heads=2)
    assert "damaged.bin" in str(raised.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("heads", "fragment"), [(0, "positive integer"), (3, "multiple of"), (-2, "positive")])
def test_impossible_head_counts_are_refused(tmp_path, heads, fragment, capsys):
    with pytest.raises(CheckpointConversionError, match=fragment):
        convert_motion_tokenizer(CHECKPOINT, num_attention_heads=heads)
    arguments = ["convert", "motion-tokenizer", "--checkpoint", CHECKPOINT, "--output", str(tmp_path / "o")]
    assert main([*arguments, "--num-attention-heads", str(heads)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "tiny_motion_tokenizer.bin" in error


def test_detokenizer_weights_of_the_wrong_shape_are_refused(tmp_path):
    for key, fragment in [
        ("unet.conv_in.weight", "conv_in.weight"),
        ("motion_encoder.out_proj.weight", "output_proj"),
    ]:
        release = write_release_folder(tmp_path / key)
        state = torch.load(release / "video_3d_unet.bin", weights_only=True)
        state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
        torch.save(state, release / "video_3d_unet.bin")
        with pytest.raises(CheckpointConversionError, match=f"wrong shape.*{fragment}"):
            convert_detokenizer(release, **HEADS)
    release = write_release_folder(tmp_path / "heads")
    with pytest.raises(CheckpointConversionError, match="multiple of"):
        convert_detokenizer(release, **(HEADS | {"motion_encoder_heads": 3}))


def test_a_reference_folder_with_a_missing_weight_is_refused(tmp_path):
    release = write_release_folder(tmp_path / "release")
    vae = release / "video_detokenizer" / "vae"
    weights = load_file(vae / "diffusion_pytorch_model.safetensors")
    weights.pop(next(iter(weights)))
    save_file(weights, vae / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointConversionError, match="video VAE.*missing"):
        convert_detokenizer(release, **HEADS)
