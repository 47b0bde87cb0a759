import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from video_lavit.cli import main


def test_tokenize_default_sample(tmp_path, capsys):
    assert main(["tokenize", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "video_lavit_sample.mp4" in out and "clips" in out
    with safe_open(tmp_path / "video_lavit_sample.safetensors", "pt") as handle:
        assert handle.get_tensor("motion_vectors").shape == (4, 2, 24, 20, 36)
        assert handle.get_tensor("keyframe_pixel_values").shape == (4, 3, 224, 224)
        assert handle.get_tensor("clip_start_frames").tolist() == [12, 36, 60, 84]
        assert handle.metadata()["num_frames"] == "120"
    assert os.path.getsize(tmp_path / "video_lavit_sample.png") > 1000


def test_tokenize_bad_input_exits_non_zero_with_one_line(tmp_path, sample_video):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    result = subprocess.run(
        [sys.executable, "-m", "video_lavit.cli", "tokenize", "-q", "-o", str(tmp_path), str(bad), sample_video],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "notes.mp4" in errors[0]
    assert (tmp_path / "sample.safetensors").exists()  # the good video is still processed


def test_tokenize_with_motion_tokenizer(tmp_path, sample_video):
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "reference", "motion_tokenizer")
    converted = tmp_path / "motion_tokenizer"
    checkpoint = os.path.join(fixture, "tiny_motion_tokenizer.bin")
    assert (
        main(
            [
                "convert",
                "motion-tokenizer",
                "--checkpoint",
                checkpoint,
                "--output",
                str(converted),
                "--num-attention-heads",
                "2",
            ]
        )
        == 0
    )
    output = tmp_path / "out"
    assert main(["tokenize", "-q", "-o", str(output), "--motion-tokenizer", str(converted), sample_video]) == 0
    with safe_open(output / "sample.safetensors", "pt") as handle:
        token_ids = handle.get_tensor("motion_token_ids")
        assert token_ids.shape == (2, 135) and token_ids.dtype == torch.long
        assert 0 <= int(token_ids.min()) and int(token_ids.max()) < 64
    one_at_a_time = tmp_path / "one"
    arguments = ["tokenize", "-q", "-o", str(one_at_a_time), "--motion-tokenizer", str(converted), sample_video]
    assert main([*arguments, "--motion-batch-size", "1"]) == 0
    with safe_open(one_at_a_time / "sample.safetensors", "pt") as handle:
        assert torch.equal(handle.get_tensor("motion_token_ids"), token_ids)
    with pytest.raises(SystemExit) as refused:
        main([*arguments, "--motion-batch-size", "0"])
    assert refused.value.code == 2
    from video_lavit import InvalidInputError
    from video_lavit.processing.clip_export import tokenize_motion

    with pytest.raises(InvalidInputError, match="at least 1"):
        tokenize_motion(None, torch.zeros(1, 2, 24, 20, 36), batch_size=0)
    from PIL import Image

    sheet = Image.open(output / "sample.png")
    plain = tmp_path / "plain"
    assert main(["tokenize", "-q", "-o", str(plain), sample_video]) == 0
    assert sheet.width > Image.open(plain / "sample.png").width  # the decoded motion is an extra column


def test_convert_reports_bad_checkpoint(tmp_path, capsys):
    assert (
        main(
            [
                "convert",
                "motion-tokenizer",
                "--checkpoint",
                str(tmp_path / "none.bin"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "no such checkpoint" in capsys.readouterr().err


# Careless and hostile use


def tiny(path, seconds=2.0, **kwargs):
    from video_lavit import make_sample_video

    options = {"width": 32, "height": 32, "fps": 25, "options": {"threads": "1"}} | kwargs
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_sample_video(path, seconds=seconds, **options)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--max-clips", "-1"], "--max-clips: must be at least 0"),
        (["--max-clips", "many"], "--max-clips: must be a whole number"),
        (["--encoder-threads", "0"], "--encoder-threads: must be from 1 to 16"),
        (["--encoder-threads", "99"], "--encoder-threads: must be from 1 to 16"),
        (["--max-duration", "-5"], "--max-duration: must be 0"),
        (["--max-duration", "nan"], "--max-duration: must be 0"),
        (["--motion-batch-size", "0"], "--motion-batch-size: must be at least 1"),
    ],
)
def test_bad_numbers_are_refused_by_the_parser(arguments, fragment, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["tokenize", *arguments])
    assert refused.value.code == 2 and fragment in capsys.readouterr().err


def test_a_corpus_with_one_broken_video_writes_all_the_others(tmp_path, capsys):
    videos = [tiny(tmp_path / f"clip_{index:02d}.mp4", seed=index) for index in range(50)]
    broken = tmp_path / "clip_25.mp4"
    broken.write_bytes(broken.read_bytes()[:3000])  # cut off in the middle
    output = tmp_path / "out"
    assert main(["tokenize", "-o", str(output), *videos]) == 1  # the exit status says something failed
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "clip_25.mp4" in errors[0]
    written = sorted(name for name in os.listdir(output) if name.endswith(".safetensors"))
    assert len(written) == 49 and "clip_25.safetensors" not in written
    assert "49 of 50 videos written" in captured.out and "1 failed" in captured.out
    assert not [name for name in os.listdir(output) if name.startswith(".")]  # no half-written file


def umask() -> int:
    from video_lavit.files import current_umask

    return current_umask()


def test_finished_videos_are_kept_and_skipped(tmp_path, capsys):
    first, second = tiny(tmp_path / "a" / "same.mp4"), tiny(tmp_path / "b" / "same.mp4", seed=1)
    output = tmp_path / "out"
    assert main(["tokenize", "-q", "-o", str(output), first]) == 0
    written = os.path.getmtime(output / "same.safetensors")
    assert main(["tokenize", "-o", str(output), first]) == 0  # an interrupted corpus run picks up where it was
    assert "already there" in capsys.readouterr().out and os.path.getmtime(output / "same.safetensors") == written
    assert main(["tokenize", "-q", "-o", str(output), second]) == 1  # another video of the same name
    assert "holds the clips of" in capsys.readouterr().err
    assert main(["tokenize", "-q", "--overwrite", "-o", str(output), second]) == 0
    with safe_open(output / "same.safetensors", "pt") as handle:
        assert handle.metadata()["source"] == second
        assert json.loads(handle.metadata()["settings"])["reader"]["max_clips"] == 16
    assert main(["tokenize", "-q", "--max-clips", "16", "-o", str(output), second]) == 0  # the default, spelt out
    assert main(["tokenize", "-q", "--max-clips", "1", "-o", str(output), second]) == 1  # other settings
    assert "made with other settings" in capsys.readouterr().err
    assert main(["tokenize", "-q", "--max-clips", "1", "--overwrite", "-o", str(output), second]) == 0
    with safe_open(output / "same.safetensors", "pt") as handle:
        settings = json.loads(handle.metadata()["settings"])
    assert settings["reader"]["max_clips"] == 1
    # How the video is read (threads, progress bars) is not a setting: a run without the reader's threads keeps it.
    assert not {"pipeline", "progress"} & (set(settings["reader"]) | set(settings["processor"]))
    from video_lavit import VideoLaVITVideoProcessor
    from video_lavit.processing.clip_export import tokenize_video

    row = tokenize_video(VideoLaVITVideoProcessor(), second, str(output), "same", max_clips=1, pipeline=False)
    assert row["skipped"] is True
    # The same video under another spelling of its path is the same video.
    relative = os.path.relpath(second)
    assert main(["tokenize", "-q", "--max-clips", "1", "-o", str(output), relative]) == 0
    # Files left by a killed run are cleaned up; a missing contact sheet is made again.
    (output / ".same.safetensors.partial-abc").write_bytes(b"x")
    os.utime(output / ".same.safetensors.partial-abc", (0, 0))
    os.unlink(output / "same.png")
    assert main(["tokenize", "-q", "--max-clips", "1", "-o", str(output), second]) == 0
    assert sorted(os.listdir(output)) == ["same.png", "same.safetensors"]
    assert oct(os.stat(output / "same.safetensors").st_mode & 0o777) == oct(0o666 & ~umask())


def mount_tmpfs(folder, options):
    folder.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode
        == 0
    )


def test_a_read_only_output_folder_is_one_clear_error(tmp_path, capsys):
    folder = tmp_path / "read_only"
    mounted = mount_tmpfs(folder, "ro,size=1m")
    target = folder if mounted else "/proc/video-lavit-output"  # where no file can be created either way
    try:
        assert main(["tokenize", "-q", "-o", str(target), tiny(tmp_path / "v.mp4")]) == 1
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and "cannot write there" in errors[0] and str(target) in errors[0]


def test_a_full_output_folder_fails_cleanly(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "full"
    mounted = mount_tmpfs(folder, "size=512k")  # one clip's pixel values and motion take 740 kB
    if not mounted:
        from video_lavit.processing import clip_export

        def full(self, name, index, row):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(clip_export.SafetensorsRowWriter, "write_row", full)
    try:
        assert main(["tokenize", "-q", "-o", str(folder), tiny(tmp_path / "v.mp4", seconds=5)]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(errors) == 1 and "v.safetensors" in errors[0] and "No space left" in errors[0]
        assert os.listdir(folder) == []  # nothing half-written is left
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_contact_sheet_of_an_extreme_aspect_ratio_stays_small(tmp_path):
    from PIL import Image

    from video_lavit import make_sample_video

    path = make_sample_video(tmp_path / "wide.mkv", width=8000, height=2, seconds=9, fps=6, codec="mpeg4")
    assert main(["tokenize", "-q", "-o", str(tmp_path / "out"), path]) == 0
    sheet = Image.open(tmp_path / "out" / "wide.png")
    assert sheet.width <= 4 * 640 and sheet.height <= 300  # one 160-pixel row, the titles and the legend


@pytest.mark.slow
def test_tokenize_memory_does_not_grow_with_the_video(tmp_path):
    """Peak memory of `video-lavit tokenize --max-clips 0` on 40 s, then (in the same process) on 320 s of video
    (10 and 80 clips): the second, longer video must not raise the process's peak."""
    script = (
        "import resource, sys; from video_lavit.cli import main\n"
        "for video, output in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    assert main(['tokenize', '-q', '--max-clips', '0', '-o', output, video]) == 0\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    arguments = []
    for seconds in (40, 320):
        arguments += [tiny(tmp_path / f"v{seconds}.mp4", seconds=seconds, fps=12), str(tmp_path / f"out{seconds}")]
    result = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    peaks = [int(line) * 1024 for line in result.stdout.split()]
    with safe_open(tmp_path / "out320" / "v320.safetensors", "pt") as handle:
        assert handle.get_slice("motion_vectors").get_shape()[0] >= 75
    # Holding every clip would add 70 clips x 0.74 MB = 52 MB.
    print("peak memory after 40 s and after 320 s of video:", peaks)
    assert peaks[1] - peaks[0] < 30e6, peaks


def test_tokenize_never_writes_over_its_input_or_files_it_did_not_write(tmp_path, capsys):
    import av

    from video_lavit import make_sample_video

    output = tmp_path / "out"
    output.mkdir()
    video = make_sample_video(tmp_path / "v.mp4", width=32, height=32, seconds=3, fps=25)
    with av.open(video) as source, av.open(str(output / "anim.png"), "w", format="apng") as target:
        stream = target.add_stream("apng", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb24"
        for frame in source.decode(video=0):
            target.mux(stream.encode(frame.reformat(format="rgb24")))
        target.mux(stream.encode(None))
    animated = (output / "anim.png").read_bytes()
    assert main(["tokenize", "-q", "--overwrite", "-o", str(output), str(output / "anim.png")]) == 1
    assert "is the video being read" in capsys.readouterr().err and (output / "anim.png").read_bytes() == animated
    (output / "v.png").write_bytes(b"my own picture")
    assert main(["tokenize", "-q", "-o", str(output), video]) == 1
    assert "was not written for" in capsys.readouterr().err and (output / "v.png").read_bytes() == b"my own picture"
    (output / "video_lavit_sample.mp4").write_bytes(b"my own video")
    assert main(["tokenize", "-q", "-o", str(output)]) == 1
    assert "not the built-in sample" in capsys.readouterr().err
    assert (output / "video_lavit_sample.mp4").read_bytes() == b"my own video"


def test_contact_sheet_titles_labels_and_legend():
    from PIL import Image

    from video_lavit.processing.visualization import join_contact_sheet_rows

    rows = [[Image.new("RGB", (80, 40), (0, 0, 255))] * 3] * 2
    plain = join_contact_sheet_rows(rows)
    labelled = join_contact_sheet_rows(rows, titles=["keyframe", "motion", "arrows"], labels=["clip 0\n2.0-6.0 s",
                                       "clip 1\n6.0-10.0 s"], legend=["hue = direction", "4 clips"])  # fmt: skip
    assert labelled.width > plain.width and labelled.height > plain.height + 30
    header = labelled.crop((0, 0, labelled.width, 12)).convert("L")
    assert header.getextrema()[0] < 128  # text is drawn above the columns
    with pytest.raises(Exception, match="1 row labels for 2 rows"):
        join_contact_sheet_rows(rows, labels=["clip 0"])


def test_version_and_arguments_checked_before_anything_loads(tmp_path, capsys):
    from video_lavit import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"video-lavit {__version__}"
    with pytest.raises(SystemExit) as refused:
        main(["generate", "a boat", "--model", "m", "--detokenizer", "d", "--height", "100"])
    assert refused.value.code == 2 and "--height: must be a positive multiple of 64" in capsys.readouterr().err
    assert main(["generate", "a boat", "--model", str(tmp_path / "none"), "--detokenizer", str(tmp_path)]) == 1
    assert "none: no such folder (--model)" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path), "--detokenizer", str(tmp_path)]) == 1
    assert "give a text prompt" in capsys.readouterr().err


def test_no_reencode_advice_speaks_the_command_line(tmp_path, capsys):
    from video_lavit import make_sample_video

    path = make_sample_video(tmp_path / "clip.webm", width=64, height=48, seconds=2, fps=25, codec="libvpx-vp9")
    assert main(["tokenize", "-q", "--no-reencode", "-o", str(tmp_path / "out"), path]) == 1
    assert "leave out --no-reencode" in capsys.readouterr().err


def test_tour_shows_the_built_in_model_at_work(tmp_path, capsys):
    assert main(["tour", "-o", str(tmp_path / "tour")]) == 0
    printed = capsys.readouterr().out
    assert "answered questions about the video" in printed and "(truth: red)" in printed
    report = json.loads((tmp_path / "tour" / "report.json").read_text())
    assert [entry["truth"] for entry in report["answers"]] == ["red", "circle", "right"]
    # The built-in model reads colour and direction (0.98 and 0.95 held out); its shape reading is near chance.
    assert [entry["answer"] for entry in report["answers"]][::2] == ["red", "right"]
    assert len(report["steps"]) == 5 and report["total_seconds"] < 120
    for name in ("world_video.mp4", "world_video.png", "world_video.safetensors", "report.md"):
        assert (tmp_path / "tour" / name).is_file(), name
    assert "![contact sheet](world_video.png)" in (tmp_path / "tour" / "report.md").read_text()
    assert main(["tour", "-q", "-o", str(tmp_path / "other"), "--model", str(tmp_path / "none")]) == 1
    assert "no such model folder" in capsys.readouterr().err


def test_chat_one_shot_and_interactive(tmp_path, capsys):
    import io

    from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
    from video_lavit.chat import VideoChat, chat_loop
    from video_lavit.training.world import make_world_video
    from video_lavit.world_model import world_model_path

    video = make_world_video("blue", "square", "up", path=tmp_path / "world.mp4")
    assert main(["chat", video, "-m", "What colour is the shape?", "-m", "Which way does the shape move?"]) == 0
    assert capsys.readouterr().out.splitlines() == ["> What colour is the shape?", "blue",
                                                    "> Which way does the shape move?", "up"]  # fmt: skip
    # Interactive: a question a line, blank lines skipped, `quit` stops; the turns build one conversation.
    path = world_model_path()
    chat = VideoChat(VideoLaVITForConditionalGeneration.from_pretrained(path).eval(),
                     VideoLaVITProcessor.from_pretrained(path), video, max_new_tokens=4)  # fmt: skip
    assert chat_loop(chat, None, stream=io.StringIO("What colour is the shape?\n\nquit\nWhat shape?\n")) == 0
    assert capsys.readouterr().out.strip() == "blue"
    assert [message["role"] for message in chat.messages] == ["user", "assistant"]
    assert chat.messages[0]["content"].startswith("<video>\n")
    assert main(["chat", str(tmp_path / "none.mp4")]) == 1 and "no such video" in capsys.readouterr().err


def test_help_imports_nothing_heavy_and_the_parser_constants_agree():
    # `video-lavit --help`, `--version` and argument errors run before torch or transformers is imported.
    script = "\n".join([
        "import sys, video_lavit_cli",
        "try:\n    video_lavit_cli.main(['--help'])\nexcept SystemExit:\n    pass",
        "print(sorted(name for name in ('torch', 'transformers', 'video_lavit') if name in sys.modules))",
    ])  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"

    import video_lavit_cli
    from video_lavit.evaluation.image_qa import GQA_POST_PROMPT
    from video_lavit.evaluation.multiple_choice import PROMPT_FORMATS
    from video_lavit.processing.video_io import DEFAULT_MAX_DURATION, MAX_ENCODER_THREADS

    assert video_lavit_cli.GQA_POST_PROMPT == GQA_POST_PROMPT
    assert video_lavit_cli.PROMPT_FORMAT_NAMES == sorted(PROMPT_FORMATS)
    assert (video_lavit_cli.DEFAULT_MAX_DURATION, video_lavit_cli.MAX_ENCODER_THREADS) == (
        DEFAULT_MAX_DURATION, MAX_ENCODER_THREADS,
    )  # fmt: skip
    with pytest.raises(SystemExit) as refused:
        main(["tokenize", "--bogus"])
    assert refused.value.code == 2
