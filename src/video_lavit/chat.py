"""`video-lavit chat VIDEO`: talk about a video with an understanding checkpoint (or the built-in world model).

The video is cut and tokenized once; each turn renders the whole conversation with the processor's chat template
(the video in the first user turn) and answers greedily. One-shot with `--message` (repeatable: a multi-turn
conversation), else interactive: a question a line, `exit`, `quit` or end of input to stop.
"""

from __future__ import annotations

import sys

import torch

from .media_tokenizers.token_layout import VIDEO_PLACEHOLDER


class VideoChat:
    """A conversation about one video: `ask(question)` returns the answer and keeps the turn in `messages`."""

    def __init__(self, model, processor, video, max_new_tokens: int = 128, **processor_options):
        self.model, self.processor, self.max_new_tokens = model, processor, max_new_tokens
        with torch.no_grad():
            self.clips = processor.video_processor(video, return_tensors="pt", **processor_options)
            self.keyframe_tokens = model.tokenize_keyframes(self.clips["keyframe_pixel_values"])
            self.motion_codes = model.model.get_motion_codes(self.clips["motion_vectors"])
        self.messages: list[dict] = []

    @torch.no_grad()
    def ask(self, question: str) -> str:
        content = f"{VIDEO_PLACEHOLDER}\n{question}" if not self.messages else question
        messages = [*self.messages, {"role": "user", "content": content}]
        prompt = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(
            text=prompt, videos=self.clips, keyframe_tokens=self.keyframe_tokens, motion_codes=self.motion_codes
        ).to(self.model.device)
        output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        answer = self.processor.post_process_answer(
            self.processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        )
        self.messages = [*messages, {"role": "assistant", "content": answer}]
        return answer


def chat_loop(chat: VideoChat, messages: list[str] | None, stream=None, quiet: bool = False) -> int:
    """Answer `messages` one after the other (one-shot), or questions read from `stream` (default stdin)."""
    if messages:
        for message in messages:
            answer = chat.ask(message)
            print(answer if quiet or len(messages) == 1 else f"> {message}\n{answer}", flush=True)
        return 0
    stream = stream or sys.stdin
    interactive = stream.isatty() if hasattr(stream, "isatty") else False
    if not quiet and interactive:
        print("Ask about the video; `exit` or Ctrl-D to stop.", flush=True)
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = stream.readline()
        if not line:
            return 0
        question = line.strip()
        if question in ("exit", "quit"):
            return 0
        if question:
            print(chat.ask(question), flush=True)


__all__ = ["VideoChat", "chat_loop"]
