"""The `video-lavit` command's argument parser, kept apart from the package so that `video-lavit --help`,
`--version` and argument errors answer at once: importing `video_lavit` loads torch and transformers (seconds), and
only the chosen command's handler, in `video_lavit.cli`, needs them. The constants below are the package's own
(a test checks that they agree).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

# video_lavit.processing.video_io
DEFAULT_MAX_DURATION = 3 * 3600.0
MAX_ENCODER_THREADS = 16
# video_lavit.evaluation.image_qa / multiple_choice
GQA_POST_PROMPT = "\nAnswer the question using a single word or phrase."
PROMPT_FORMAT_NAMES = ["default", "egoschema", "mmbench", "mvbench", "nextqa", "question_only", "videomme"]


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("video-lavit")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


EVALUATION_TASKS = {
    "world": "the built-in procedural world: held-out world videos, every question kind, exact match (offline)",
    "video-qa": "open-ended video QA (MSVD-QA, MSRVTT-QA, ActivityNet-QA): Video-ChatGPT's test_q/test_a files or "
    "a dataset in the Hub layout; exact match, and the GPT judge with --judge-url",
    "multiple-choice": "multiple-choice video or image QA (Video-MME, MVBench, EgoSchema, NExT-QA MC, MMBench, or a "
    "generic layout) with lmms-eval's prompts; letter extraction or option log-likelihood; accuracy overall and per "
    "category",
    "image-qa": "open-ended image QA (GQA-style: question, answer, image or image id); exact match",
    "reconstruction": "tokenizer round trips on a folder of videos: motion end-point error and code usage, keyframe "
    "code usage, and PSNR / SSIM of detokenized clips with --detokenizer",
    "text-to-video": "CLIPSIM and FVD of generated videos (a folder, or made from --prompts with --detokenizer) "
    "with the CLIP and I3D you give",
}


def _int_at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _multiple_of_64(text: str) -> int:
    value = _positive_int(text)
    if value % 64:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 64 (the video size), got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or a positive number of seconds, got {text}")
    return value


_positive_int = _int_at_least(1)


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                        help="auto: bfloat16 on a GPU, float32 on the CPU")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, ...")


def _render_arguments(task: argparse.ArgumentParser, detokenizer_help: str) -> None:
    task.add_argument("--detokenizer", help=detokenizer_help)
    task.add_argument(
        "--height", type=_multiple_of_64, default=320, help="render height, multiple of 64 (default 320)"
    )
    task.add_argument("--width", type=_multiple_of_64, default=512, help="render width, multiple of 64 (default 512)")
    task.add_argument("--steps", type=_positive_int, default=25, help="video denoising steps (default 25)")


def _question_task_arguments(task: argparse.ArgumentParser, name: str) -> None:
    task.add_argument("--dataset", required=True, help="the set: folder, data file, or cached Hub id")
    task.add_argument("--split", help="the dataset's split (default: the benchmark's, e.g. MVBench's train)")
    task.add_argument("--name", help="the set's name in the results (e.g. Video-MME)")
    if name == "multiple-choice":
        task.add_argument("--video-dir", help="folder of the videos")
    task.add_argument("--image-dir", help="folder of image files named in the set")
    task.add_argument("--limit", type=_positive_int, help="the first N questions only")
    task.add_argument("--max-clips", type=_int_at_least(1), help="most clips per video (default 16)")
    if name == "image-qa":
        task.add_argument("--config", help="the dataset's configuration")
        task.add_argument("--max-new-tokens", type=_positive_int, default=16, help="longest answer (default 16)")
        task.add_argument("--post-prompt", default=GQA_POST_PROMPT, help="text after each question (default: GQA's)")
        return
    task.add_argument(
        "--benchmark", required=True, choices=("videomme", "mvbench", "egoschema", "nextqa", "mmbench", "generic"),
        help="the set's layout and prompt",
    )  # fmt: skip
    task.add_argument("--config", help="configuration(s), comma-separated (MVBench subtasks, EgoSchema's Subset)")
    task.add_argument(
        "--method",
        choices=("generate", "loglik"),
        default="generate",
        help="read the letter from a generated reply, or rank the options by log-likelihood",
    )
    task.add_argument("--prompt-format", choices=PROMPT_FORMAT_NAMES, help="override the benchmark's prompt")
    task.add_argument("--max-new-tokens", type=_positive_int, default=16, help="longest reply (default 16)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="video-lavit", description="Video-LaVIT: videos as keyframe and motion tokens."
    )
    parser.add_argument("--version", action="version", version=f"video-lavit {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    tour = commands.add_parser(
        "tour",
        help="the main job: a video through the built-in world model (clips, tokens, answers, pictures, report)",
    )
    tour.add_argument("video", nargs="?", help="a video file (default: a built-in world video)")
    tour.add_argument("--model", help="a converted checkpoint folder (default: the built-in world model)")
    tour.add_argument("--question", help="the question to ask (default: the world's questions, or a description)")
    tour.add_argument("-o", "--output-dir", default="video_lavit_tour", help="where to write (default: %(default)s)")
    _device_arguments(tour)
    tour.add_argument("-q", "--quiet", action="store_true", help="no progress and no step lines")
    tour.set_defaults(handler="run_tour")

    chat = commands.add_parser("chat", help="talk about a video with an understanding checkpoint")
    chat.add_argument("video", help="the video file")
    chat.add_argument("--model", help="a converted understanding checkpoint (default: the built-in world model)")
    chat.add_argument(
        "-m", "--message", action="append", help="ask this and exit (repeat for several turns; default: interactive)"
    )
    chat.add_argument("--max-new-tokens", type=_positive_int, default=128, help="longest answer (default 128)")
    chat.add_argument("--max-clips", type=_int_at_least(1), help="most clips of the video (default 16)")
    _device_arguments(chat)
    chat.add_argument("-q", "--quiet", action="store_true", help="answers only")
    chat.set_defaults(handler="run_chat")

    demo = commands.add_parser("demo", help="a Gradio app: chat about a video; text- and image-to-video")
    demo.add_argument("--model", help="a converted checkpoint (default: the built-in world model, chat only)")
    demo.add_argument("--detokenizer", help="a detokenizer pipeline folder: enables text- and image-to-video")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on (default %(default)s)")
    demo.add_argument("--port", type=_int_at_least(1, 65535), default=7860, help="port (default %(default)s)")
    _device_arguments(demo)
    demo.set_defaults(handler="run_demo")

    tokenize = commands.add_parser(
        "tokenize",
        help="cut videos into clips: keyframes and motion-vector grids, saved as safetensors with a contact sheet",
    )
    tokenize.add_argument("videos", nargs="*", help="video files (default: a built-in procedural sample)")
    tokenize.add_argument(
        "-o", "--output-dir", default="video_lavit_output", help="where to write (default: %(default)s)"
    )
    tokenize.add_argument("--processor", help="a folder saved by VideoLaVITVideoProcessor.save_pretrained")
    tokenize.add_argument(
        "--max-clips", type=_int_at_least(0), help="most clips per video (default 16; 0 for no limit)"
    )
    tokenize.add_argument("--no-reencode", action="store_true", help="read the stream as it is (faster, approximate)")
    tokenize.add_argument(
        "--encoder-threads",
        type=_int_at_least(1, MAX_ENCODER_THREADS),
        help=f"MPEG-4 encoder slices, 1 to {MAX_ENCODER_THREADS} (default 16)",
    )
    tokenize.add_argument(
        "--max-duration",
        type=_seconds,
        help=f"longest video read, in seconds (default {DEFAULT_MAX_DURATION:g}, 3 hours; 0 for no limit)",
    )
    tokenize.add_argument(
        "--overwrite", action="store_true", help="redo videos whose output files exist (default: skip them)"
    )
    tokenize.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no table")
    tokenize.add_argument(
        "--motion-tokenizer", help="a converted motion tokenizer folder: also write its 135 token ids per clip"
    )
    tokenize.add_argument(
        "--motion-batch-size",
        type=_positive_int,
        default=4,
        help="clips per motion tokenizer call (default %(default)s; memory grows with it)",
    )
    tokenize.set_defaults(handler="run_tokenize")

    convert = commands.add_parser("convert", help="convert reference checkpoints to safetensors folders")
    targets = convert.add_subparsers(dest="target", required=True)
    motion = targets.add_parser("motion-tokenizer", help="motion_tokenizer.bin -> VideoLaVITMotionTokenizer folder")
    motion.add_argument("--checkpoint", required=True, help="the reference's motion_tokenizer.bin")
    motion.add_argument("--output", required=True, help="folder to write (config.json + model.safetensors)")
    motion.add_argument("--num-attention-heads", type=int, default=8, help="heads (default %(default)s)")
    motion.add_argument("--overwrite", action="store_true", help="replace an output folder that already holds files")
    motion.set_defaults(handler="run_convert_motion_tokenizer")
    visual = targets.add_parser(
        "visual-tokenizer",
        help="visual_tokenizer/ (EVA ViT, tokenizer encoder, highres decoder) -> keyframe tokenizer + decoder folders",
    )
    visual.add_argument(
        "--checkpoint-dir",
        required=True,
        help="the reference's visual_tokenizer/ folder (eva_vitg_psz14.bin, tokenizer_encoder.bin, "
        "highres_tokenizer_decoder.bin)",
    )
    visual.add_argument(
        "--output", required=True, help="folder to write visual_tokenizer/ and visual_token_decoder/ in"
    )
    visual.add_argument("--vision-attention-heads", type=int, help="ViT heads (default: width / 88, 16 for ViT-g)")
    visual.add_argument(
        "--num-attention-heads", type=int, default=16, help="merger and decoder heads (default %(default)s)"
    )
    visual.add_argument("--overwrite", action="store_true", help="replace an output folder that already holds files")
    visual.set_defaults(handler="run_convert_visual_tokenizer")
    language = targets.add_parser(
        "language-model",
        help="language_model_sft/ (understanding) or language_model/ (generation) -> a model folder",
    )
    language.add_argument("--checkpoint-dir", required=True, help="the reference's language_model(_sft)/ folder")
    language.add_argument("--output", required=True, help="folder to write (model, generation config, processor)")
    language.add_argument(
        "--visual-tokenizer", help="visual_tokenizer/ folder or a converted one (needed for language_model/)"
    )
    language.add_argument(
        "--motion-tokenizer", help="motion_tokenizer.bin or a converted folder (needed for language_model/)"
    )
    language.add_argument(
        "--keyframe-input",
        choices=("features", "codes"),
        help="keyframes as continuous features (understanding) or codes (generation); default: from the checkpoint",
    )
    language.add_argument("--num-attention-heads", type=int, default=16, help="merger heads (default %(default)s)")
    language.add_argument(
        "--motion-attention-heads", type=int, default=8, help="motion tokenizer heads (default %(default)s)"
    )
    language.add_argument("--vision-attention-heads", type=int, help="ViT heads (default: width / 88)")
    language.add_argument("--tokenizer-dir", help="folder of the LLaMA tokenizer files (default: --checkpoint-dir)")
    language.add_argument("--overwrite", action="store_true", help="replace an output folder that already holds files")
    language.set_defaults(handler="run_convert_language_model")
    detokenizer = targets.add_parser(
        "detokenizer",
        help="video_detokenizer/, video_3d_unet.bin, image_detokenizer/ (+ tokenizers) -> one pipeline folder",
    )
    detokenizer.add_argument("--checkpoint-dir", required=True, help="the Video-LaVIT release folder")
    detokenizer.add_argument("--output", required=True, help="pipeline folder to write")
    detokenizer.add_argument("--motion-encoder-heads", type=int, default=8, help="(default %(default)s)")
    detokenizer.add_argument("--motion-tokenizer-heads", type=int, default=8, help="(default %(default)s)")
    detokenizer.add_argument("--num-attention-heads", type=int, default=16, help="token decoder heads (default 16)")
    detokenizer.add_argument("--vision-attention-heads", type=int, help="keyframe ViT heads (default: width / 88)")
    detokenizer.add_argument("--no-keyframe-model", action="store_true", help="video path only (no image_detokenizer)")
    detokenizer.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that already holds files"
    )
    detokenizer.set_defaults(handler="run_convert_detokenizer")
    release = targets.add_parser(
        "release",
        help="the whole release -> understanding/, generation/, video_detokenizer/, keyframe/ with model cards",
    )
    release.add_argument("root", help="the Video-LaVIT release folder (hf download rain1011/Video-LaVIT-v1)")
    release.add_argument("--output", required=True, help="folder to write the four parts into (a rerun resumes)")
    release.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default %(default)s)")
    release.add_argument("--num-attention-heads", type=int, default=16, help="merger / token decoder heads (16)")
    release.add_argument("--motion-attention-heads", type=int, default=8, help="motion tokenizer heads (8)")
    release.add_argument("--vision-attention-heads", type=int, help="ViT heads (default: width / 88)")
    release.add_argument("--motion-encoder-heads", type=int, default=8, help="motion condition encoder heads (8)")
    release.add_argument(
        "--eval-results", action="append", default=[], metavar="PART=RESULTS_JSON",
        help="a results.json of `video-lavit evaluate` for a part's model card (repeatable)",
    )  # fmt: skip
    release.add_argument(
        "--hub-prefix", metavar="USER/NAME",
        help="the Hub repositories to publish to: the cards load USER/NAME-understanding, -generation, "
        "-video-detokenizer, -keyframe, and the hf upload commands are printed (default: the local folders)",
    )  # fmt: skip
    release.add_argument("-q", "--quiet", action="store_true", help="no line per part")
    release.set_defaults(handler="run_convert_release")

    prepare = commands.add_parser(
        "prepare",
        help="videos, images and conversations -> token shards (Parquet) for training, with an error report",
    )
    prepare.add_argument(
        "source",
        help="a CSV/JSONL/JSON corpus (video|image + caption, WebVid, LLaVA / Video-ChatGPT conversations), a folder "
        "of videos, or a folder saved by datasets",
    )
    prepare.add_argument("--output", required=True, help="folder to write (an existing preparation is resumed)")
    prepare.add_argument(
        "--tokenizers", help="a Video-LaVIT model folder whose tokenizers make the tokens (default: motion grids only)"
    )
    prepare.add_argument("--num-proc", type=_positive_int, default=1, help="worker processes / Ray actors (default 1)")
    prepare.add_argument("--engine", choices=("datasets", "ray"), default="datasets", help="(default %(default)s)")
    prepare.add_argument("--shard-size", type=_positive_int, default=256, help="samples per shard (default 256)")
    prepare.add_argument("--batch-size", type=_positive_int, default=4, help="samples per worker call (default 4)")
    prepare.add_argument("--media-root", help="folder that relative media paths are relative to")
    prepare.add_argument(
        "--num-gpus",
        type=float,
        help="GPUs per Ray actor (default: 1 where the cluster has GPUs, else 0); actors are capped to what fits",
    )
    prepare.add_argument("--max-clips", type=_int_at_least(0), help="most clips per video (default 16; 0: no limit)")
    prepare.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    prepare.set_defaults(handler="run_prepare")

    train = commands.add_parser(
        "train",
        help="train a stage with transformers' Trainer: pretrain, sft or motion-tokenizer (flags or a YAML file), "
        "or world (the tiny procedural-world model, from scratch)",
        add_help=False,
    )
    train.add_argument("stage", nargs="?", default="", help="pretrain, sft, motion-tokenizer or world")
    train.add_argument("arguments", nargs=argparse.REMAINDER, help="CONFIG.yaml, or the stage's flags (--help)")
    train.set_defaults(handler="run_train")

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint: " + ", ".join(EVALUATION_TASKS),
        description="Tasks:\n" + "\n".join(f"  {name}: {text}" for name, text in EVALUATION_TASKS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = evaluate.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, text in EVALUATION_TASKS.items():
        task = tasks.add_parser(name, help=text, description=text)
        task.add_argument("--model", help="the checkpoint folder (default: the built-in world model)")
        task.add_argument("--output", required=True, help="results folder (a run in it resumes)")
        task.add_argument("--batch-size", type=_positive_int, default=8, help="questions per batch (default 8)")
        _device_arguments(task)
        task.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        task.set_defaults(handler="run_evaluate")
        if name == "world":
            task.add_argument("--num-videos", type=_positive_int, default=32, help="held-out videos (default 32)")
            task.add_argument("--seed", type=int, default=0, help="seed of the videos (default 0)")
            continue
        if name in ("multiple-choice", "image-qa"):
            _question_task_arguments(task, name)
            continue
        if name == "reconstruction":
            task.add_argument("--video-dir", required=True, help="folder of the videos")
            task.add_argument("--limit", type=_positive_int, help="the first N videos only")
            task.add_argument("--max-clips", type=_int_at_least(1), help="most clips per video (default 16)")
            _render_arguments(task, "render the clips with this detokenizer pipeline folder for PSNR / SSIM")
            task.add_argument("--seed", type=int, default=0, help="render seed (default 0)")
            continue
        if name == "text-to-video":
            source = task.add_mutually_exclusive_group(required=True)
            source.add_argument("--samples", help="JSON lines (or a JSON list) of {prompt, video}: videos to score")
            source.add_argument("--prompts", help="a text file of prompts, one a line: generate (needs --detokenizer)")
            _render_arguments(task, "the detokenizer pipeline folder that renders --prompts")
            task.add_argument("--seeds", default="0", help="comma-separated seeds, one video each (default 0)")
            task.add_argument("--clips", type=_positive_int, default=1, help="clips per video (default 1)")
            task.add_argument(
                "--keyframe-steps", type=_positive_int, default=50, help="keyframe denoising steps (default 50)"
            )
            task.add_argument("--clip", dest="clip_model", help="a transformers CLIPModel folder: CLIPSIM")
            task.add_argument("--clip-frames", type=_positive_int, help="frames per video for CLIPSIM (default all)")
            task.add_argument("--i3d", help="an I3D TorchScript file: FVD")
            real = task.add_mutually_exclusive_group()
            real.add_argument("--real-videos", help="folder of the real videos of the FVD")
            real.add_argument("--real-stats", help="an .npz of the real videos' mu and sigma")
            task.add_argument("--num-frames", type=_positive_int, default=16, help="FVD frames (default 16)")
            task.add_argument("--stride", type=_positive_int, default=1, help="FVD frame stride (default 1)")
            task.add_argument("--resolution", type=_positive_int, default=224, help="FVD frame size (default 224)")
            task.add_argument("--prompts-source", help="where the prompts come from, for the results")
            continue
        task.add_argument("--questions", help="Video-ChatGPT's test_q.json")
        task.add_argument("--answers", help="Video-ChatGPT's test_a.json (aligned with --questions)")
        task.add_argument("--dataset", help="a dataset in the Hub layout: folder, data file, or cached Hub id")
        task.add_argument("--split", default="test", help="the dataset's split (default test)")
        task.add_argument("--config", help="the dataset's configuration")
        task.add_argument("--name", help="the set's name in the results (e.g. MSVD-QA)")
        task.add_argument("--video-dir", required=True, help="folder of the videos, by video_name")
        task.add_argument("--limit", type=_positive_int, help="the first N questions only")
        task.add_argument("--max-new-tokens", type=_positive_int, default=32, help="longest answer (default 32)")
        task.add_argument("--max-clips", type=_int_at_least(1), help="most clips per video (default 16)")
        task.add_argument("--judge-url", help="an OpenAI-compatible API root, e.g. https://api.openai.com/v1")
        task.add_argument(
            "--judge-model", default="gpt-3.5-turbo", help="judge model (default: the paper-era gpt-3.5-turbo)"
        )
        task.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable of the key")
        task.add_argument("--judge-concurrency", type=_positive_int, default=8, help="calls in flight (default 8)")
        task.add_argument("--judge-retries", type=_int_at_least(0), default=5, help="retries per call (default 5)")
        task.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per call (default 60)")

    generate = commands.add_parser("generate", help="text-to-video or image-to-video, written with export_to_video")
    generate.add_argument("prompt", nargs="?", help="the text prompt (optional with --image)")
    generate.add_argument("--model", required=True, help="a converted generation checkpoint (language_model/)")
    generate.add_argument("--detokenizer", required=True, help="a converted detokenizer pipeline folder")
    generate.add_argument(
        "-o", "--output", default="video_lavit.mp4", help="video file to write (default %(default)s)"
    )
    generate.add_argument("--image", help="image-to-video: the first keyframe")
    generate.add_argument(
        "--clips", type=_positive_int, default=1, help="clips of 24 frames (text-to-video; default 1)"
    )
    generate.add_argument("--height", type=_multiple_of_64, default=320, help="multiple of 64 (default %(default)s)")
    generate.add_argument("--width", type=_multiple_of_64, default=512, help="multiple of 64 (default %(default)s)")
    generate.add_argument(
        "--steps", type=_positive_int, default=25, help="video denoising steps (default %(default)s)"
    )
    generate.add_argument(
        "--keyframe-steps", type=_positive_int, default=50, help="keyframe denoising steps (default 50)"
    )
    generate.add_argument("--fps", type=_positive_int, default=6, help="frame rate of the file (default %(default)s)")
    generate.add_argument("--seed", type=int, help="makes the result reproducible")
    _device_arguments(generate)
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    generate.set_defaults(handler="run_generate")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments (fast: nothing heavy is imported for `--help`, `--version` or a bad argument), then run
    the command's handler from `video_lavit.cli`."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.handler == "run_train":  # `train STAGE --help` and the stage's own flags
        args.arguments = [*unknown, *args.arguments]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "quiet", False):
        from video_lavit.quiet import silence_library_progress

        silence_library_progress()
    from video_lavit import cli

    return getattr(cli, args.handler)(args)
