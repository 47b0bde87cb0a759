"""The `video-lavit` command line.

`video-lavit tokenize [VIDEO ...]` cuts videos into clips and writes, per video, a `.safetensors` file with the
keyframes, motion grids and clip metadata, and a PNG contact sheet (`processing.clip_export`); with no video it runs
on a built-in procedural sample so a fresh install shows something real. A video that cannot be read is reported on
one `error:` line and the others go on; the exit status is 1 if any failed. Videos already written are skipped
unless `--overwrite`, so an interrupted run picks up where it stopped.

`video-lavit convert ...` turns the reference checkpoints into safetensors folders, written completely or not at
all; `video-lavit generate` renders text-to-video or image-to-video.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from huggingface_hub.utils import disable_progress_bars

from video_lavit_cli import EVALUATION_TASKS, build_parser, main  # noqa: F401  (the parser lives apart, to be fast)

from .errors import OutputError, VideoLaVITError
from .files import replace_file
from .loading import resolve_device_and_dtype
from .processing.clip_export import check_output_folder, tokenize_video
from .processing.sample_video import make_sample_video
from .processing.video_processing_video_lavit import VideoLaVITVideoProcessor

SAMPLE_VIDEO_NAME = "video_lavit_sample.mp4"


def _output_stem(video: str, used: set[str]) -> str:
    stem = os.path.splitext(os.path.basename(os.path.normpath(video)))[0] or "video"
    candidate, counter = stem, 1
    while candidate in used:
        counter += 1
        candidate = f"{stem}_{counter}"
    used.add(candidate)
    return candidate


def _print_table(rows: list[dict]) -> None:
    name_width = max([5] + [len(os.path.basename(row["video"])) for row in rows])
    print(f"{'video':<{name_width}}  {'clips':>5}  {'video s':>8}  {'took s':>7}  output")
    for row in rows:
        name = os.path.basename(row["video"])
        if row["skipped"]:
            print(f"{name:<{name_width}}  {'-':>5}  {'-':>8}  {'-':>7}  {row['tensors']} (already there; --overwrite)")
            continue
        print(
            f"{name:<{name_width}}  {row['clips']:>5}  {row['seconds']:>8.1f}  {row['time']:>7.2f}  "
            f"{row['tensors']}, {row['sheet']}"
        )


def run_tokenize(args: argparse.Namespace) -> int:
    if args.quiet:
        disable_progress_bars()
    try:
        check_output_folder(args.output_dir)
        videos = list(args.videos)
        if not videos:
            sample = os.path.join(args.output_dir, SAMPLE_VIDEO_NAME)
            data = make_sample_video(None, seconds=20.0)
            if not os.path.exists(sample):
                with replace_file(sample) as file:
                    file.write(data)
            elif open(sample, "rb").read() != data:
                raise OutputError(
                    f"{sample}: exists and is not the built-in sample video; choose another output folder, or pass "
                    "the video to tokenize."
                )
            if not args.quiet:
                print(f"no video given: using the built-in sample {sample} (20 s, 320x192, moving texture)")
            videos = [sample]
        processor = (
            VideoLaVITVideoProcessor.from_pretrained(args.processor) if args.processor else VideoLaVITVideoProcessor()
        )
        motion_tokenizer = None
        if args.motion_tokenizer:
            from .media_tokenizers.chunked_blocks import enable_chunked_blocks
            from .media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer

            motion_tokenizer = VideoLaVITMotionTokenizer.from_pretrained(args.motion_tokenizer).eval()
            enable_chunked_blocks(motion_tokenizer)  # bounded memory for batches of clips on the CPU
    except (VideoLaVITError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    options = {"progress": False if args.quiet else None}
    if args.max_clips is not None:
        options["max_clips"] = None if args.max_clips == 0 else args.max_clips
    if args.no_reencode:
        options["reencode"] = False
    if args.encoder_threads is not None:
        options["encoder_threads"] = args.encoder_threads
    if args.max_duration is not None:
        options["max_duration"] = None if args.max_duration == 0 else args.max_duration

    rows, failures, used = [], 0, set()
    for video in videos:
        try:
            stem = _output_stem(video, used)
            rows.append(
                tokenize_video(
                    processor,
                    video,
                    args.output_dir,
                    stem,
                    motion_tokenizer,
                    motion_batch_size=args.motion_batch_size,
                    overwrite=args.overwrite,
                    **options,
                )
            )
        except VideoLaVITError as error:
            failures += 1
            print(f"error: {error}", file=sys.stderr)
        except OSError as error:  # a write the package's own checks did not anticipate
            failures += 1
            print(f"error: {video}: writing its output failed ({error})", file=sys.stderr)
    if not args.quiet:
        if rows:
            _print_table(rows)
        skipped = sum(row["skipped"] for row in rows)
        print(
            f"{len(rows) - skipped} of {len(videos)} videos written to {args.output_dir}"
            + (f", {skipped} already there" if skipped else "")
            + (f", {failures} failed (see the errors above)" if failures else "")
        )
    return 1 if failures else 0


def _report(call, summary) -> int:
    """Run a library call; print its summary lines, or its error as one `error:` line (exit status 1)."""
    try:
        result = call()
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line, is_note in summary(result):
        print(line, file=sys.stderr if is_note else sys.stdout)
    return 0


def run_convert_motion_tokenizer(args: argparse.Namespace) -> int:
    from .conversion.motion_tokenizer import convert_motion_tokenizer

    return _report(
        lambda: convert_motion_tokenizer(
            args.checkpoint, args.output, num_attention_heads=args.num_attention_heads, overwrite=args.overwrite
        ),
        lambda model: [(f"wrote {args.output} ({model.num_parameters():,} parameters)", False)],
    )


def run_convert_visual_tokenizer(args: argparse.Namespace) -> int:
    from .conversion.visual_tokenizer import convert_visual_tokenizer

    def summary(models):
        return [
            (f"wrote {os.path.join(args.output, name)} ({model.num_parameters():,} parameters)", False)
            for name, model in zip(("visual_tokenizer", "visual_token_decoder"), models)
        ]

    return _report(
        lambda: convert_visual_tokenizer(
            args.checkpoint_dir,
            args.output,
            vision_num_attention_heads=args.vision_attention_heads,
            num_attention_heads=args.num_attention_heads,
            overwrite=args.overwrite,
        ),
        summary,
    )


def run_convert_language_model(args: argparse.Namespace) -> int:
    from .conversion.language_model import convert_language_model

    def summary(converted):
        model, processor = converted
        kind = "understanding" if model.config.keyframe_input == "features" else "generation"
        lines = [(f"wrote {args.output} ({kind} model, {model.num_parameters():,} parameters)", False)]
        if processor is None:
            lines.append(("note: no tokenizer files found; the folder has no processor (pass --tokenizer-dir)", True))
        return lines

    return _report(
        lambda: convert_language_model(
            args.checkpoint_dir,
            args.output,
            visual_tokenizer=args.visual_tokenizer,
            motion_tokenizer=args.motion_tokenizer,
            keyframe_input=args.keyframe_input,
            num_attention_heads=args.num_attention_heads,
            motion_attention_heads=args.motion_attention_heads,
            vision_attention_heads=args.vision_attention_heads,
            tokenizer_dir=args.tokenizer_dir,
            overwrite=args.overwrite,
        ),
        summary,
    )


def _release_eval_results(entries: list[str]) -> dict:
    """`PART=results.json` options -> per part, the model card's `EvalResult`s."""
    import json

    from .conversion.release import PARTS
    from .evaluation.results import card_eval_results

    results: dict[str, list] = {}
    for entry in entries:
        part, _, path = entry.partition("=")
        if part not in PARTS or not path:
            raise VideoLaVITError(f"--eval-results takes PART=RESULTS_JSON with PART one of {', '.join(PARTS)}")
        try:
            with open(path, encoding="utf-8") as file:
                results.setdefault(part, []).extend(card_eval_results(json.load(file)))
        except (OSError, ValueError) as error:
            raise VideoLaVITError(f"{path}: not a results.json of `video-lavit evaluate` ({error})") from error
    return results


def run_convert_release(args: argparse.Namespace) -> int:
    from .conversion.release import convert_release
    from .model_cards import hub_repo_ids

    try:
        eval_results = _release_eval_results(args.eval_results)
        if args.hub_prefix is not None:
            hub_repo_ids(args.hub_prefix)
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    def summary(report):
        lines = [(f"{part}: {entry['folder']}", False) for part, entry in report["parts"].items()]
        lines.append((f"report: {os.path.join(args.output, 'conversion_report.json')}", False))
        uploads = [entry["upload_command"] for entry in report["parts"].values() if "upload_command" in entry]
        return lines + (
            [("publish with:", False)] + [(f"  {command}", False) for command in uploads] if uploads else []
        )

    return _report(
        lambda: convert_release(
            args.root, args.output, max_shard_size=args.max_shard_size, num_attention_heads=args.num_attention_heads,
            motion_attention_heads=args.motion_attention_heads, vision_attention_heads=args.vision_attention_heads,
            motion_encoder_heads=args.motion_encoder_heads, eval_results=eval_results, hub_prefix=args.hub_prefix,
            progress=not args.quiet,
        ),
        summary,
    )  # fmt: skip


def run_convert_detokenizer(args: argparse.Namespace) -> int:
    from .conversion.detokenizer import convert_detokenizer

    def summary(pipeline):
        names = ", ".join(name for name, component in pipeline.components.items() if component is not None)
        return [(f"wrote {args.output} ({names})", False)]

    return _report(
        lambda: convert_detokenizer(
            args.checkpoint_dir,
            args.output,
            motion_encoder_heads=args.motion_encoder_heads,
            motion_tokenizer_heads=args.motion_tokenizer_heads,
            visual_num_attention_heads=args.num_attention_heads,
            vision_num_attention_heads=args.vision_attention_heads,
            include_keyframe_model=not args.no_keyframe_model,
            overwrite=args.overwrite,
        ),
        summary,
    )


def run_generate(args: argparse.Namespace) -> int:
    from .pipelines.generation import VideoLaVITGenerator
    from .processing.processing_video_lavit import load_image_file

    device, dtype = resolve_device_and_dtype(args.device, args.dtype)
    detokenizer_kwargs = dict(height=args.height, width=args.width, num_inference_steps=args.steps)
    try:
        image = load_image_file(args.image) if args.image else None  # before the models: bad input fails fast
        if image is not None and args.clips != 1:
            raise VideoLaVITError("image-to-video makes one clip; drop --clips or leave out --image")
        if image is None and not args.prompt:
            raise VideoLaVITError("give a text prompt, or --image for image-to-video")
        for name in ("model", "detokenizer"):
            if not os.path.isdir(getattr(args, name)):
                raise VideoLaVITError(f"{getattr(args, name)}: no such folder (--{name})")
        generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
        generator.detokenizer.set_progress_bar_config(disable=args.quiet)
        if image is not None:
            output = generator.image_to_video(image, args.prompt or "", seed=args.seed, **detokenizer_kwargs)
        else:
            output = generator.text_to_video(
                args.prompt,
                num_clips=args.clips,
                seed=args.seed,
                keyframe_num_inference_steps=args.keyframe_steps,
                **detokenizer_kwargs,
            )
        path = generator.save_video(output.frames[0], args.output, fps=args.fps)
    except (VideoLaVITError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {path} ({len(output.frames[0])} frames at {args.fps} fps)")
    return 0


def _evaluation_model(args: argparse.Namespace):
    from .modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
    from .processing.processing_video_lavit import VideoLaVITProcessor
    from .world_model import world_model_path

    folder = args.model or world_model_path()
    device, dtype = resolve_device_and_dtype(args.device, args.dtype)
    if device == torch.device("cuda"):  # under accelerate launch / torchrun: each process on its own GPU
        from accelerate import PartialState

        device = PartialState().device
    model = VideoLaVITForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    return model, VideoLaVITProcessor.from_pretrained(folder), folder


def _print_metrics(results: dict) -> None:
    for protocol, values in results["metrics"].items():
        shown = ", ".join(
            f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
            for name, value in values.items()
            if value is not None and not isinstance(value, dict)
        )
        if not shown:  # a breakdown (per category): one line per group
            for field, groups in values.items():
                for group, figures in groups.items():
                    if isinstance(figures, dict) and figures.get("accuracy") is not None:
                        print(f"{protocol} {field}={group}: accuracy {figures['accuracy']:.4f} "
                              f"({figures['correct']}/{figures['answered']})")  # fmt: skip
            continue
        print(f"{protocol}: {shown}")


def _run_question_task(args: argparse.Namespace) -> dict:
    video_dir = getattr(args, "video_dir", None)
    if video_dir is not None and not os.path.isdir(video_dir):
        raise VideoLaVITError(f"{video_dir}: no such folder of videos (--video-dir)")
    if args.image_dir is not None and not os.path.isdir(args.image_dir):
        raise VideoLaVITError(f"{args.image_dir}: no such folder of images (--image-dir)")
    source = {"name": args.name or args.dataset, "type": args.dataset, "source": args.dataset}
    options = {"max_clips": args.max_clips} if args.max_clips is not None else None
    if args.task == "image-qa":
        from .evaluation.image_qa import evaluate_image_qa, read_image_qa_dataset

        samples = read_image_qa_dataset(args.dataset, args.image_dir, split=args.split or "test", name=args.config)
        source["split"] = args.split or "test"
        samples = samples[: args.limit] if args.limit else samples
        model, processor, folder = _evaluation_model(args)
        return evaluate_image_qa(
            model, processor, samples, args.output, post_prompt=args.post_prompt, batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens, processor_options=options, checkpoint=folder, dataset=source,
            progress=not args.quiet,
        )  # fmt: skip
    from .evaluation.multiple_choice import BENCHMARK_SPLITS, evaluate_multiple_choice, read_multiple_choice_dataset

    split = args.split or BENCHMARK_SPLITS.get(args.benchmark, "test")
    configs = args.config.split(",") if args.config else [None]
    samples = []
    for config in configs:  # MVBench: one configuration per subtask
        samples += read_multiple_choice_dataset(args.dataset, args.benchmark, args.video_dir, split=split,
                                                name=config, image_dir=args.image_dir)  # fmt: skip
    source.update(split=split, type=args.benchmark, configs=configs if args.config else None)
    samples = samples[: args.limit] if args.limit else samples
    model, processor, folder = _evaluation_model(args)
    return evaluate_multiple_choice(
        model, processor, samples, args.output, method=args.method, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, processor_options=options, prompt_format=args.prompt_format,
        checkpoint=folder, dataset=source, progress=not args.quiet,
    )  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    try:
        if args.output and os.path.isfile(args.output):
            raise VideoLaVITError(f"{args.output}: is a file; --output takes a folder (a run in it resumes)")
        if args.task == "world":
            from .evaluation.world import evaluate_world

            model, processor, folder = _evaluation_model(args)
            results = evaluate_world(
                model, processor, args.output, num_videos=args.num_videos, seed=args.seed,
                batch_size=args.batch_size, checkpoint=folder, progress=not args.quiet,
            )  # fmt: skip
        elif args.task in ("multiple-choice", "image-qa"):
            results = _run_question_task(args)
        elif args.task == "reconstruction":
            results = _run_reconstruction(args)
        elif args.task == "text-to-video":
            results = _run_text_to_video(args)
        else:
            from .evaluation.judge import GPTJudge
            from .evaluation.video_qa import evaluate_video_qa, read_video_chatgpt, read_video_qa_dataset

            if bool(args.questions) == bool(args.dataset) or bool(args.questions) != bool(args.answers):
                raise VideoLaVITError("give --questions and --answers (Video-ChatGPT's files), or --dataset")
            if not os.path.isdir(args.video_dir):
                raise VideoLaVITError(f"{args.video_dir}: no such folder of videos (--video-dir)")
            judge = None
            if args.judge_url:
                judge = GPTJudge(
                    args.judge_url, model=args.judge_model, api_key_env=args.judge_key_env,
                    cache_path=os.path.join(args.output, "judge_cache.jsonl"), concurrency=args.judge_concurrency,
                    max_retries=args.judge_retries, timeout=args.judge_timeout,
                )  # fmt: skip
            if args.questions:
                samples = read_video_chatgpt(args.questions, args.answers, args.video_dir)
                source = {"name": args.name or "video-qa", "type": "video-chatgpt", "source": args.questions}
            else:
                samples = read_video_qa_dataset(args.dataset, args.video_dir, split=args.split, name=args.config)
                source = {"name": args.name or args.dataset, "type": args.dataset, "source": args.dataset}
            source["split"] = args.split
            if args.limit:
                samples = samples[: args.limit]
            model, processor, folder = _evaluation_model(args)
            options = {"max_clips": args.max_clips} if args.max_clips is not None else None
            results = evaluate_video_qa(
                model, processor, samples, args.output, judge=judge, batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens, processor_options=options, checkpoint=folder, dataset=source,
                progress=not args.quiet,
            )  # fmt: skip
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _print_metrics(results)
    print(f"results: {os.path.join(args.output, 'results.json')}")
    judge = results["metrics"].get("gpt_judge")
    if judge and judge["failed"]:  # calls that failed after every retry (a refused request stops the run)
        print(f"error: {judge['failed']} judge calls failed; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def run_tour(args: argparse.Namespace) -> int:
    from .tour import run_tour as tour

    try:
        device, dtype = resolve_device_and_dtype(args.device, args.dtype)
        tour(args.output_dir, video=args.video, model_dir=args.model, question=args.question, device=device,
             dtype=dtype,
             quiet=args.quiet)  # fmt: skip
    except (VideoLaVITError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from .chat import VideoChat, chat_loop

    try:
        if not os.path.isfile(args.video):
            raise VideoLaVITError(f"{args.video}: no such video file")
        if args.model and not os.path.isdir(args.model):
            raise VideoLaVITError(f"{args.model}: no such model folder (--model)")
        model, processor, _ = _evaluation_model(args)
        options = {"max_clips": args.max_clips} if args.max_clips is not None else {}
        chat = VideoChat(model, processor, args.video, max_new_tokens=args.max_new_tokens, **options)
        return chat_loop(chat, args.message, quiet=args.quiet)
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_demo(args: argparse.Namespace) -> int:
    try:
        for name in ("model", "detokenizer"):
            if getattr(args, name) and not os.path.isdir(getattr(args, name)):
                raise VideoLaVITError(f"{getattr(args, name)}: no such folder (--{name})")
        if args.detokenizer and not args.model:
            raise VideoLaVITError("--detokenizer renders a generation checkpoint: give it with --model")
        try:
            import gradio  # noqa: F401
        except ImportError as error:
            raise VideoLaVITError("the demo needs Gradio: pip install 'video-lavit[demo]'") from error
        from .demo import launch

        print(f"Video-LaVIT demo on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
        device, dtype = resolve_device_and_dtype(args.device, args.dtype)
        launch(args.model, args.detokenizer, host=args.host, port=args.port, device=device, dtype=dtype)
    except VideoLaVITError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from .training.prepare import prepare_corpus

    if args.quiet:
        disable_progress_bars()
    options = {}
    if args.max_clips is not None:
        options["max_clips"] = None if args.max_clips == 0 else args.max_clips

    def summary(result):
        lines = [
            (
                f"{result.prepared} of {result.samples} samples prepared ({result.clips} clips) in "
                f"{result.output_dir}",
                False,
            ),
        ]
        if result.shards_skipped:
            lines.append((f"{result.shards_skipped} of {result.shards} shards were already there (resumed)", False))
        if result.failed:
            classes = ", ".join(f"{count} {name}" for name, count in sorted(result.error_classes.items()))
            lines.append((f"{result.failed} failed ({classes}): see {result.errors_path}", False))
        return lines

    return _report(
        lambda: prepare_corpus(
            args.source,
            args.output,
            tokenizers=args.tokenizers,
            num_proc=args.num_proc,
            engine=args.engine,
            shard_size=args.shard_size,
            batch_size=args.batch_size,
            media_root=args.media_root,
            processor_options=options,
            num_gpus=args.num_gpus,
            progress=not args.quiet,
        ),
        summary,
    )


def run_train(args: argparse.Namespace) -> int:
    from .training.train import main as train_main

    return train_main([args.stage, *args.arguments])


def _run_reconstruction(args: argparse.Namespace) -> dict:
    from .evaluation.reconstruction import evaluate_reconstruction, list_videos
    from .evaluation.video_qa import VIDEO_EXTENSIONS
    from .pipelines.pipeline_video_lavit import VideoLaVITDetokenizerPipeline

    videos = list_videos(args.video_dir)
    if not videos:
        raise VideoLaVITError(f"{args.video_dir}: holds no video file ({', '.join(VIDEO_EXTENSIONS)})")
    videos = videos[: args.limit] if args.limit else videos
    if args.detokenizer and not os.path.isdir(args.detokenizer):
        raise VideoLaVITError(f"{args.detokenizer}: no such detokenizer folder (--detokenizer)")
    model, processor, folder = _evaluation_model(args)
    detokenizer = None
    if args.detokenizer:
        detokenizer = VideoLaVITDetokenizerPipeline.from_pretrained(args.detokenizer).to(model.device)
    options = {"max_clips": args.max_clips} if args.max_clips is not None else None
    return evaluate_reconstruction(
        model, processor, videos, args.output, detokenizer=detokenizer, height=args.height, width=args.width,
        num_inference_steps=args.steps, seed=args.seed, processor_options=options, checkpoint=folder,
        dataset={"name": args.video_dir, "type": "video-folder", "source": args.video_dir}, progress=not args.quiet,
    )  # fmt: skip


def _run_text_to_video(args: argparse.Namespace) -> dict:
    from .evaluation.reconstruction import list_videos
    from .evaluation.text_to_video import (
        evaluate_text_to_video,
        generate_text_to_video_samples,
        load_clip,
        load_i3d,
        read_samples,
    )  # fmt: skip

    if not args.clip_model and not args.i3d:
        raise VideoLaVITError("give --clip (CLIPSIM), --i3d (FVD), or both")
    if args.i3d and not (args.real_videos or args.real_stats):
        raise VideoLaVITError("FVD needs the real side: --real-videos DIR or --real-stats FILE.npz")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError as error:
        raise VideoLaVITError(f"--seeds takes comma-separated integers, got {args.seeds!r}") from error
    if args.prompts and (not args.detokenizer or not args.model):
        raise VideoLaVITError("--prompts generates the videos: give --model and --detokenizer")
    real_videos = list_videos(args.real_videos) if args.real_videos else None
    protocol = {"prompts_source": args.prompts_source or args.prompts or args.samples}
    if args.prompts:
        try:
            with open(args.prompts, encoding="utf-8") as file:
                prompts = [line.strip() for line in file if line.strip()]
        except OSError as error:
            raise VideoLaVITError(f"{args.prompts}: cannot be read ({error})") from error
        if not prompts:
            raise VideoLaVITError(f"{args.prompts}: holds no prompt")
        from .pipelines.generation import VideoLaVITGenerator

        device, dtype = resolve_device_and_dtype(args.device, args.dtype)
        generator = VideoLaVITGenerator.from_pretrained(args.model, args.detokenizer, dtype=dtype, device=device)
        samples = generate_text_to_video_samples(
            generator, prompts, args.output, seeds=seeds, num_clips=args.clips, height=args.height, width=args.width,
            num_inference_steps=args.steps, keyframe_num_inference_steps=args.keyframe_steps, progress=not args.quiet,
        )  # fmt: skip
        render = {"height": args.height, "width": args.width, "num_inference_steps": args.steps,
                  "keyframe_num_inference_steps": args.keyframe_steps}  # fmt: skip
        protocol.update(seeds=seeds, clips=args.clips, samples_per_prompt=len(seeds), render=render)
        del generator  # its memory, before the scorers load
    else:
        samples = read_samples(args.samples)
    device = resolve_device_and_dtype(args.device)[0]
    clip = load_clip(args.clip_model, device) if args.clip_model else None
    i3d = load_i3d(args.i3d, device) if args.i3d else None
    return evaluate_text_to_video(
        samples, args.output, clip=clip, i3d=i3d, real_videos=real_videos, real_statistics=args.real_stats,
        num_frames=args.num_frames, stride=args.stride, resolution=args.resolution, clip_frames=args.clip_frames,
        batch_size=args.batch_size, checkpoint=args.model or "", protocol=protocol, progress=not args.quiet,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
