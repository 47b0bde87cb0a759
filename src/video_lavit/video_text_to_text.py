"""`pipeline("video-text-to-text", model=...)`: questions about videos, answered by a Video-LaVIT checkpoint.

transformers has no `video-text-to-text` task; `import video_lavit` registers this pipeline for it with
`PIPELINE_REGISTRY`, so the usual call works:

    from transformers import pipeline
    import video_lavit  # registers the task

    answer = pipeline("video-text-to-text", model="converted/understanding")
    answer(videos="clip.mp4", text="What is happening?")                      # [{"generated_text": ...}]
    answer([[{"role": "user", "content": [{"type": "video", "path": "clip.mp4"},
                                          {"type": "text", "text": "What is happening?"}]}]])

Inputs are a video and a question (or lists of both), or chat messages whose content parts name videos
(`{"type": "video", "path" | "url" | "video": ...}`) and images (`{"type": "image", ...}`), one conversation or a
list of them. Conversations are answered `batch_size` at a time (one processor call and one `generate` per batch,
left padded), greedily unless generation options say otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import GenerationConfig, Pipeline

from .errors import InvalidInputError


def _is_chat(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(item, dict) for item in value)


class VideoTextToTextPipeline(Pipeline):
    """Answer questions about videos (and images) with a Video-LaVIT checkpoint; see the module docstring.

    Call options: `max_new_tokens` (default 64), `generate_kwargs` (a dict for `generate`), `batch_size`
    (conversations per `generate`, default 1), `return_full_text` (the rendered prompt, then the answer, as
    transformers' text pipelines do).

    Returns:
        Per conversation, `[{"generated_text": answer}]`; a single conversation gives its list alone.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=64, do_sample=False)

    def _sanitize_parameters(self, max_new_tokens=None, generate_kwargs=None, return_full_text=None, **kwargs):
        if kwargs:
            raise InvalidInputError(
                f"video-text-to-text takes max_new_tokens, generate_kwargs, batch_size and return_full_text; got "
                f"{', '.join(sorted(kwargs))}."
            )
        forward = {"generate_kwargs": dict(generate_kwargs or {})}
        if max_new_tokens is not None:
            forward["generate_kwargs"]["max_new_tokens"] = max_new_tokens
        postprocess = {} if return_full_text is None else {"return_full_text": return_full_text}
        return {}, forward, postprocess

    def __call__(self, inputs=None, videos=None, text=None, batch_size: int | None = None, **kwargs):
        chats, single = self._conversations(inputs, videos, text)
        size = batch_size or getattr(self, "_batch_size", None) or 1
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {size!r}.")
        batches = [chats[start : start + size] for start in range(0, len(chats), size)]
        outputs = []
        for batch in batches:
            outputs.extend(super().__call__(_Batch(batch), **kwargs))
        return outputs[0] if single else outputs

    @staticmethod
    def _conversations(inputs, videos, text) -> tuple[list, bool]:
        if inputs is not None and (videos is not None or text is not None):
            raise InvalidInputError("pass chat messages, or videos= and text=, not both.")
        if inputs is None:
            if videos is None or text is None:
                raise InvalidInputError("give chat messages, or both videos= and text= (one question per video).")
            single = isinstance(text, str)
            if single and isinstance(videos, (list, tuple)):
                raise InvalidInputError("one question for several videos: give text= as a list, one per video.")
            video_list = [videos] if single else list(videos) if isinstance(videos, (list, tuple)) else [videos]
            texts = [text] if single else list(text)
            if len(video_list) != len(texts):
                raise InvalidInputError(f"{len(video_list)} videos for {len(texts)} questions; give one each.")
            chats = [
                [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": question}]}]
                for video, question in zip(video_list, texts)
            ]
            return chats, single
        if _is_chat(inputs):
            return [list(inputs)], True
        if isinstance(inputs, Sequence) and not isinstance(inputs, str) and inputs and all(map(_is_chat, inputs)):
            return [list(chat) for chat in inputs], False
        raise InvalidInputError(
            "inputs must be a conversation (a list of {role, content} messages) or a list of conversations."
        )

    def preprocess(self, batch):
        chats = batch.chats
        inputs = self.processor.apply_chat_template(
            chats, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt",
            processor_kwargs={"keyframe_tokenizer": self.model, "padding_side": "left"},
        )  # fmt: skip
        prompts = self.processor.apply_chat_template(chats, tokenize=False, add_generation_prompt=True)
        return {"model_inputs": inputs, "prompts": prompts}

    def _forward(self, model_inputs, generate_kwargs=None):
        inputs = dict(model_inputs["model_inputs"])  # the base class has moved the tensors to the model's device
        options = {"do_sample": False, **self._prepare_generate_kwargs(dict(generate_kwargs or {}))}
        generated = self.model.generate(**inputs, **options)
        return {"new_tokens": generated[:, inputs["input_ids"].shape[1] :], "prompts": model_inputs["prompts"]}

    def _prepare_generate_kwargs(self, generate_kwargs: dict) -> dict:
        if "generation_config" not in generate_kwargs and "max_new_tokens" not in generate_kwargs:
            generate_kwargs["max_new_tokens"] = self._default_generation_config.max_new_tokens
        return generate_kwargs

    def postprocess(self, model_outputs, return_full_text: bool = False):
        answers = self.processor.post_process_answer(
            self.processor.batch_decode(model_outputs["new_tokens"], skip_special_tokens=True)
        )
        prompts = model_outputs["prompts"]
        prompts = [prompts] if isinstance(prompts, str) else prompts
        # As transformers' text pipelines: `return_full_text` puts the prompt before the answer.
        return [
            [{"generated_text": f"{prompt} {answer}" if return_full_text else answer}]
            for answer, prompt in zip(answers, prompts)
        ]


class _Batch:
    """Conversations answered together (one pipeline input, so that the base class does not iterate them)."""

    def __init__(self, chats: list):
        self.chats = chats


def register_pipeline() -> None:
    """Register `VideoTextToTextPipeline` for the `video-text-to-text` task (safe to call twice)."""
    from transformers import AutoModelForImageTextToText
    from transformers.pipelines import PIPELINE_REGISTRY

    if "video-text-to-text" not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            "video-text-to-text", pipeline_class=VideoTextToTextPipeline, pt_model=AutoModelForImageTextToText,
            type="multimodal",
        )  # fmt: skip


__all__ = ["VideoTextToTextPipeline", "register_pipeline"]
