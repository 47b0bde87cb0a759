"""`video-lavit demo`: a Gradio app to chat about a video and, with a detokenizer, make videos.

- **Chat about a video**: upload a video, ask; the answer comes with the pictures of what the model read: each
  clip's keyframe, its motion grid, and that motion decoded from the clip's motion codes (the contact sheet).
- **Text-to-video** and **image-to-video** (with `--detokenizer` and a generation checkpoint): a prompt, or a first
  frame and an optional prompt, to a video, with the contact sheet of its motion.

`video-lavit demo` starts it on the built-in world model (chat only; it has no detokenizer), on
http://127.0.0.1:7860. Nothing is downloaded; Gradio's analytics are off.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

WORLD_EXAMPLE_QUESTION = "What colour is the shape?"


class DemoModels:
    """The models behind the demo: an understanding (or generation) checkpoint, and optionally a generator."""

    def __init__(
        self, model_dir: str | None = None, detokenizer_dir: str | None = None, device="cpu", dtype=None, **render
    ):
        from .modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
        from .processing.processing_video_lavit import VideoLaVITProcessor
        from .world_model import world_model_path

        self.model_dir = model_dir or world_model_path()
        options = {} if dtype is None else {"dtype": dtype}
        self.model = VideoLaVITForConditionalGeneration.from_pretrained(self.model_dir, **options).to(device).eval()
        self.processor = VideoLaVITProcessor.from_pretrained(self.model_dir)
        self.generator, self.render = None, render  # render: height, width, num_inference_steps, ...
        if detokenizer_dir is not None:  # one copy of the language model serves the chat and the generator
            from .pipelines.generation import VideoLaVITGenerator
            from .pipelines.pipeline_video_lavit import VideoLaVITDetokenizerPipeline

            detokenizer = VideoLaVITDetokenizerPipeline.from_pretrained(detokenizer_dir, **options).to(device)
            detokenizer.set_progress_bar_config(disable=True)
            self.generator = VideoLaVITGenerator(self.model, self.processor, detokenizer)
        self._work = tempfile.TemporaryDirectory(prefix="video-lavit-demo-")  # removed with the demo
        self.work_dir = self._work.name

    def contact_sheet(self, video: str) -> str:
        """The contact sheet of `video` (keyframes, motion, decoded motion), as a PNG path."""
        from .processing.clip_export import tokenize_video

        stem = f"sheet-{abs(hash(video))}"
        tokenize_video(self.processor.video_processor, video, self.work_dir, stem, self.model.model.motion_tokenizer,
                       overwrite=True, progress=False)  # fmt: skip
        return os.path.join(self.work_dir, f"{stem}.png")

    def answer(self, video: str | None, question: str) -> tuple[str, str | None]:
        from .chat import VideoChat
        from .errors import VideoLaVITError

        if not video:
            return "Upload a video first.", None
        if not question or not question.strip():
            return "Ask a question about the video.", None
        try:
            chat = VideoChat(self.model, self.processor, video, max_new_tokens=64)
            return chat.ask(question.strip()), self.contact_sheet(video)
        except VideoLaVITError as error:
            return f"error: {error}", None

    def text_to_video(self, prompt: str, seed: int, clips: int) -> tuple[str | None, str]:
        if self.generator is None:
            return None, "Start the demo with --model GENERATION --detokenizer DIR to make videos."
        if not prompt or not prompt.strip():
            return None, "Write a prompt."
        output = self.generator.text_to_video(prompt.strip(), num_clips=int(clips), seed=int(seed), **self.render)
        path = self.generator.save_video(output.frames[0], os.path.join(self.work_dir, f"t2v-{int(seed)}.mp4"))
        return path, "done"

    def image_to_video(self, image, prompt: str, seed: int) -> tuple[str | None, str]:
        if self.generator is None:
            return None, "Start the demo with --model GENERATION --detokenizer DIR to make videos."
        if image is None:
            return None, "Give a first frame."
        render = {key: value for key, value in self.render.items() if not key.startswith("keyframe_")}
        output = self.generator.image_to_video(image, prompt or "", seed=int(seed), **render)
        path = self.generator.save_video(output.frames[0], os.path.join(self.work_dir, f"i2v-{int(seed)}.mp4"))
        return path, "done"


def build_demo(models: DemoModels):
    """The Gradio `Blocks` of the demo around `models`."""
    import gradio as gr

    generation = models.generator is not None
    with gr.Blocks(title="Video-LaVIT") as demo:
        gr.Markdown(
            "# Video-LaVIT\nVideos as keyframe and motion tokens. Model: `" + os.path.basename(models.model_dir) + "`"
            + ("" if generation else " (chat only: start with `--detokenizer` to make videos)")
        )  # fmt: skip
        with gr.Tab("Chat about a video"):
            with gr.Row():
                with gr.Column():
                    video = gr.File(label="Video", file_types=["video"], elem_id="video-upload")
                    question = gr.Textbox(label="Question", value=WORLD_EXAMPLE_QUESTION, elem_id="question")
                    ask = gr.Button("Ask", variant="primary", elem_id="ask")
                with gr.Column():
                    answer = gr.Textbox(label="Answer", interactive=False, elem_id="answer")
                    sheet = gr.Image(label="What the model read: keyframe, motion, decoded motion", type="filepath",
                                     elem_id="sheet")  # fmt: skip
            ask.click(models.answer, inputs=[video, question], outputs=[answer, sheet])
        with gr.Tab("Text-to-video"):
            prompt = gr.Textbox(label="Prompt", value="a boat sailing on a calm lake", elem_id="prompt")
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0)
                clips = gr.Slider(1, 4, value=1, step=1, label="Clips of 24 frames")
            make = gr.Button("Make the video", interactive=generation, elem_id="make")
            made = gr.Video(label="Video", elem_id="made")
            status = gr.Textbox(label="Status", interactive=False, elem_id="status")
            make.click(models.text_to_video, inputs=[prompt, seed, clips], outputs=[made, status])
        with gr.Tab("Image-to-video"):
            image = gr.Image(label="First frame", type="pil", elem_id="first-frame")
            image_prompt = gr.Textbox(label="Prompt (optional)")
            image_seed = gr.Number(label="Seed", value=0, precision=0)
            animate = gr.Button("Animate", interactive=generation, elem_id="animate")
            animated = gr.Video(label="Video", elem_id="animated")
            image_status = gr.Textbox(label="Status", interactive=False, elem_id="animate-status")
            animate.click(models.image_to_video, inputs=[image, image_prompt, image_seed],
                          outputs=[animated, image_status])  # fmt: skip
    return demo


def launch(model_dir=None, detokenizer_dir=None, host="127.0.0.1", port=7860, device="cpu", dtype=None, block=True):
    """Build and start the demo; returns the running `Blocks` (with `block=False`, the server runs in a thread)."""
    demo = build_demo(DemoModels(model_dir, detokenizer_dir, device, dtype))
    demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True)
    return demo


__all__ = ["DemoModels", "build_demo", "launch"]
