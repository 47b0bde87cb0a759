"""The GPT-judge protocol of open-ended video QA (Video-ChatGPT's), against any OpenAI-compatible endpoint.

Video-ChatGPT's quantitative evaluation, which MSVD-QA, MSRVTT-QA and ActivityNet-QA results (the paper's among
them) are reported with, asks a chat model whether each prediction matches the reference answer and for an integer
score from 0 to 5. Accuracy is `yes / (yes + no)` and the score is the mean over the judged samples. The prompts
below are the protocol's own text (changing a word changes the judge's verdicts, hence the published figures).

The paper-era judge was `gpt-3.5-turbo` (the default model name here); lmms-eval now defaults to a `gpt-4o` model,
whose verdicts differ, so the model name is recorded with every result.

`GPTJudge` posts to `{base_url}/chat/completions` (OpenAI's API, vLLM, llama.cpp's server, ...):
- calls run concurrently (`concurrency` threads), each retried with exponential backoff (honouring `Retry-After`)
  on timeouts, connection errors, 429 and 5xx replies; other 4xx replies (a bad key, an unknown model) stop the
  whole run at once (`JudgeRefusedError`), since every other call would be refused too;
- replies are cached on disk by (question, answer, prediction, judge model, endpoint, temperature): a rerun makes
  no call for what was judged, so an interrupted or partly failed run resumes;
- a reply that does not parse as `{'pred': 'yes' | 'no', 'score': 0-5}` is counted and reported (`unparsed`), never
  scored; a call that fails after every retry is counted (`failed`) and retried by the next run.
"""

from __future__ import annotations

import ast
import hashlib
import http.client
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from tqdm.auto import tqdm

from ..errors import InvalidInputError, JudgeError


class JudgeRefusedError(JudgeError):
    """The endpoint refused the request (a bad key, an unknown model): no other call can do better."""


DEFAULT_JUDGE_MODEL = "gpt-3.5-turbo"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

JUDGE_SYSTEM_PROMPT = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
    "question-answer pairs. Your task is to compare the predicted answer with the correct answer and determine if "
    "they match meaningfully. Here's how you can accomplish the task:\n"
    "------\n"
    "##INSTRUCTIONS: \n"
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n"
    "- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer."
)
JUDGE_USER_PROMPT = (
    "Please evaluate the following video-based question-answer pair:\n\n"
    "Question: {question}\n"
    "Correct Answer: {answer}\n"
    "Predicted Answer: {prediction}\n\n"
    "Provide your evaluation only as a yes/no and score where the score is an integer value between 0 and 5, with 5 "
    "indicating the highest meaningful match. Please generate the response in the form of a Python dictionary string "
    "with keys 'pred' and 'score', where value of 'pred' is  a string of 'yes' or 'no' and value of 'score' is in "
    "INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary "
    "string. For example, your response should look like this: {{'pred': 'yes', 'score': 4.8}}."
)

_RETRIED_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class JudgeVerdict:
    """The judge's verdict on one prediction.

    Attributes:
        id (`str`): the sample.
        status (`str`): `"judged"`, `"unparsed"` (a reply that is not the protocol's dictionary) or `"failed"` (no
            reply after every retry, or a refused request).
        pred (`str` or None): `"yes"` or `"no"` when judged.
        score (`float` or None): 0 to 5 when judged.
        reply (`str` or None): the judge's raw reply.
        error (`str` or None): why the call failed.
        cached (`bool`): whether the reply came from the cache.
    """

    id: str
    status: str
    pred: str | None = None
    score: float | None = None
    reply: str | None = None
    error: str | None = None
    cached: bool = False


def judge_messages(question: str, answer: str, prediction: str) -> list[dict[str, str]]:
    """The protocol's chat messages for one sample."""
    user = JUDGE_USER_PROMPT.format(question=question, answer=answer, prediction=prediction)
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_judge_reply(reply: str) -> tuple[str, float] | None:
    """`(pred, score)` from a reply holding the protocol's dictionary, e.g. `"{'pred': 'yes', 'score': 4}"`, or None
    when it holds none (other keys, `pred` not yes/no, a score that is not a number in [0, 5])."""
    if not isinstance(reply, str):
        return None
    for match in re.finditer(r"\{[^{}]*\}", reply):
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if not isinstance(value, dict):
            continue
        pred, score = value.get("pred"), value.get("score")
        if isinstance(pred, str) and pred.strip().lower() in ("yes", "no"):
            if isinstance(score, str):
                try:
                    score = float(score)
                except ValueError:
                    continue
            if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 5:
                return pred.strip().lower(), float(score)
    return None


def cache_key(question: str, answer: str, prediction: str, model: str, url: str = "", temperature: float = 0.0) -> str:
    """The cache key of one judgement: a SHA-256 of (question, answer, prediction, judge model, endpoint URL,
    temperature): one model name served at two endpoints, or sampled differently, is two judges."""
    data = [question, answer, prediction, model, url, float(temperature)]
    return hashlib.sha256(json.dumps(data).encode("utf-8")).hexdigest()


class _ReplyCache:
    """Judge replies on disk, one JSON line `{key, reply}` each, appended as they come."""

    def __init__(self, path: str | None):
        self.path, self.replies, self.lock = path, {}, threading.Lock()
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                for line in file:
                    try:
                        entry = json.loads(line)
                        self.replies[entry["key"]] = entry["reply"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a line cut by an interruption
        elif path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def get(self, key: str) -> str | None:
        return self.replies.get(key)

    def put(self, key: str, reply: str) -> None:
        with self.lock:
            self.replies[key] = reply
            if self.path:
                with open(self.path, "a", encoding="utf-8") as file:
                    file.write(json.dumps({"key": key, "reply": reply}) + "\n")
                    file.flush()


class GPTJudge:
    """An OpenAI-compatible chat endpoint that judges open-ended answers by Video-ChatGPT's protocol.

    Args:
        base_url (`str`): the API root, e.g. `"https://api.openai.com/v1"` or `"http://127.0.0.1:8000/v1"`.
        model (`str`, *optional*, defaults to `"gpt-3.5-turbo"`): the judge model's name.
        api_key_env (`str`, *optional*, defaults to `"OPENAI_API_KEY"`): the environment variable holding the key
            (sent as a bearer token when set; a local server may need none).
        cache_path (`str`, *optional*): the reply cache (JSON lines); None keeps replies in memory only.
        concurrency (`int`, *optional*, defaults to 8): calls in flight.
        max_retries (`int`, *optional*, defaults to 5): retries of a call after the first try.
        timeout (`float`, *optional*, defaults to 60): seconds a call may take.
        initial_backoff (`float`), max_backoff (`float`): seconds before the first retry, doubling up to this.
        temperature (`float`, *optional*, defaults to 0): the judge's sampling temperature.
    """

    def __init__(
        self,
        base_url: str,
        model: str = DEFAULT_JUDGE_MODEL,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        cache_path: str | os.PathLike | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        temperature: float = 0.0,
    ):
        if not isinstance(base_url, str) or not re.match(r"https?://", base_url):
            raise InvalidInputError(f"the judge URL must start with http:// or https://, got {base_url!r}.")
        for name, value, lowest in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise InvalidInputError(f"{name} must be an integer of at least {lowest}, got {value!r}.")
        if not timeout > 0:
            raise InvalidInputError(f"timeout must be positive, got {timeout!r}.")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.concurrency, self.max_retries, self.timeout = concurrency, max_retries, float(timeout)
        self.initial_backoff, self.max_backoff, self.temperature = initial_backoff, max_backoff, temperature
        self.cache = _ReplyCache(os.fspath(cache_path) if cache_path is not None else None)

    @property
    def settings(self) -> dict:
        """What the results record of the judge (never the key)."""
        return {
            "protocol": "video-chatgpt",
            "url": self.url,
            "model": self.model,
            "temperature": self.temperature,
            "api_key_env": self.api_key_env,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One chat completion's text, retried as the module docstring says.

        Raises:
            `JudgeError`: no reply after every retry, a refused request, or a reply without a message.
        """
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        delay, retry_after, last_error = self.initial_backoff, 0.0, None
        for attempt in range(self.max_retries + 1):
            if attempt:
                # Jittered, so that calls refused together do not come back together; never before Retry-After.
                time.sleep(max(retry_after, min(delay, self.max_backoff) * random.uniform(0.8, 1.2)))
                delay, retry_after = delay * 2, 0.0
            request = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code} {error.reason}"
                if error.code not in _RETRIED_STATUS:
                    raise JudgeRefusedError(
                        f"{self.url}: the judge refused the request ({last_error}); check the key in "
                        f"${self.api_key_env}, the model name {self.model!r} and the URL."
                    ) from error
                header = error.headers.get("Retry-After") if error.headers else None
                if header and header.replace(".", "", 1).isdigit():
                    retry_after = float(header)
                continue
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, OSError) as error:
                last_error = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
                continue
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                last_error = f"a reply that is not JSON ({error})"
                continue
            try:
                return payload["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError) as error:
                raise JudgeError(f"{self.url}: the reply holds no chat message: {str(payload)[:200]}") from error
        raise JudgeError(f"{self.url}: no reply after {self.max_retries + 1} tries (last: {last_error}).")

    def judge_one(self, sample_id: str, question: str, answer: str, prediction: str) -> JudgeVerdict:
        """The verdict on one prediction (from the cache when it holds it)."""
        key = cache_key(question, answer, prediction, self.model, self.url, self.temperature)
        reply, cached = self.cache.get(key), True
        if reply is None:
            cached = False
            try:
                reply = self.complete(judge_messages(question, answer, prediction))
            except JudgeRefusedError:
                raise
            except JudgeError as error:
                return JudgeVerdict(sample_id, "failed", error=str(error))
            self.cache.put(key, reply)
        parsed = parse_judge_reply(reply)
        if parsed is None:
            return JudgeVerdict(sample_id, "unparsed", reply=reply, cached=cached)
        return JudgeVerdict(sample_id, "judged", pred=parsed[0], score=parsed[1], reply=reply, cached=cached)

    def judge(self, records: Sequence[dict], progress: bool = True) -> list[JudgeVerdict]:
        """Verdicts on prediction records (`id, question, answer, pred`), in their order, `concurrency` at a time."""
        bar = tqdm(total=len(records), desc="judging", unit="answer", disable=not progress)

        def run(record: dict) -> JudgeVerdict:
            verdict = self.judge_one(str(record["id"]), record["question"], record["answer"], record["pred"])
            bar.update(1)
            return verdict

        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            return list(pool.map(run, records))
        finally:
            # A refused request (or an interruption) cancels the calls not yet started; replies so far are cached.
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()


def judge_metrics(verdicts: Sequence[JudgeVerdict]) -> dict:
    """Accuracy (`yes / (yes + no)`), mean score, and the counts of each verdict status."""
    judged = [verdict for verdict in verdicts if verdict.status == "judged"]
    yes = sum(verdict.pred == "yes" for verdict in judged)
    return {
        "accuracy": yes / len(judged) if judged else None,
        "score": sum(verdict.score for verdict in judged) / len(judged) if judged else None,
        "yes": yes,
        "no": len(judged) - yes,
        "judged": len(judged),
        "unparsed": sum(verdict.status == "unparsed" for verdict in verdicts),
        "failed": sum(verdict.status == "failed" for verdict in verdicts),
    }


def verdict_record(verdict: JudgeVerdict) -> dict:
    """A verdict as a JSON-ready dict."""
    return asdict(verdict)


__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_JUDGE_MODEL",
    "GPTJudge",
    "JUDGE_SYSTEM_PROMPT",
    "JUDGE_USER_PROMPT",
    "JudgeRefusedError",
    "JudgeVerdict",
    "cache_key",
    "judge_messages",
    "judge_metrics",
    "parse_judge_reply",
    "verdict_record",
]
