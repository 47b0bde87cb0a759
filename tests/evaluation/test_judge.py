"""The GPT judge against a real HTTP server on the loopback: verdicts, malformed replies, timeouts, 429s, refusals,
the cache, and a judge that is down."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from video_lavit.errors import InvalidInputError, JudgeError
from video_lavit.evaluation.judge import (
    JUDGE_SYSTEM_PROMPT,
    GPTJudge,
    JudgeRefusedError,
    judge_messages,
    judge_metrics,
    parse_judge_reply,
)


class FakeJudge(BaseHTTPRequestHandler):
    """Replies by the prediction in the prompt: "right" yes/5, "wrong" no/1, "garbled" not the protocol's dict,
    "slow" after longer than the client waits (first call only), "busy" 429 (first call only), "refused" 401."""

    calls: list = []
    seen: dict = {}
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][1]["content"]
        prediction = prompt.split("Predicted Answer: ")[1].split("\n")[0]
        with self.lock:
            self.calls.append(
                {"prediction": prediction, "model": body["model"], "auth": self.headers.get("Authorization")}
            )
            first = prediction not in self.seen
            self.seen[prediction] = True
        if prediction == "refused":
            return self._send(401, {"error": "bad key"})
        if prediction == "busy" and first:
            return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
        if prediction == "slow" and first:
            time.sleep(1.5)
        reply = {
            "right": "{'pred': 'yes', 'score': 5}",
            "wrong": "Sure! {'pred': 'no', 'score': 1}",
            "garbled": "I would say it mostly matches.",
        }.get(prediction, "{'pred': 'yes', 'score': 3}")
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply}}]})

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting


@pytest.fixture
def server():
    FakeJudge.calls, FakeJudge.seen = [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def records(*predictions):
    return [
        {"id": str(i), "question": "What moves?", "answer": "a red square", "pred": p}
        for i, p in enumerate(predictions)
    ]


def test_verdicts_retries_cache_and_failures(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "secret")
    cache = tmp_path / "cache.jsonl"
    judge = GPTJudge(server, model="judge-1", api_key_env="JUDGE_TEST_KEY", cache_path=cache, concurrency=4,
                     max_retries=2, timeout=0.5, initial_backoff=0.01)  # fmt: skip
    verdicts = judge.judge(records("right", "wrong", "garbled", "slow", "busy"), progress=False)
    by_pred = dict(zip(["right", "wrong", "garbled", "slow", "busy"], verdicts))
    assert (by_pred["right"].status, by_pred["right"].pred, by_pred["right"].score) == ("judged", "yes", 5.0)
    assert (by_pred["wrong"].pred, by_pred["wrong"].score) == ("no", 1.0)
    assert by_pred["garbled"].status == "unparsed" and "mostly matches" in by_pred["garbled"].reply
    assert by_pred["slow"].status == "judged"  # timed out once, then answered
    assert by_pred["busy"].status == "judged"  # 429 once, then answered
    assert all(call["model"] == "judge-1" and call["auth"] == "Bearer secret" for call in FakeJudge.calls)
    metrics = judge_metrics(verdicts)
    assert metrics == {"accuracy": 3 / 4, "score": (5 + 1 + 3 + 3) / 4, "yes": 3, "no": 1, "judged": 4,
                       "unparsed": 1, "failed": 0}  # fmt: skip

    # A refused request (a bad key) stops the run at once, never retried; what was judged stays cached.
    with pytest.raises(JudgeRefusedError, match="401"):
        judge.judge(records("refused"), progress=False)
    assert sum(call["prediction"] == "refused" for call in FakeJudge.calls) == 1

    # A rerun answers from the cache: no call is made.
    calls = len(FakeJudge.calls)
    again = GPTJudge(server, model="judge-1", api_key_env="JUDGE_TEST_KEY", cache_path=cache, max_retries=0,
                     timeout=0.5)  # fmt: skip
    verdicts = again.judge(records("right", "wrong", "garbled", "slow", "busy"), progress=False)
    assert len(FakeJudge.calls) == calls and all(verdict.cached for verdict in verdicts)
    # Another judge model is another cache key.
    other = GPTJudge(server, model="judge-2", cache_path=cache, max_retries=0)
    other.judge(records("right"), progress=False)
    assert FakeJudge.calls[-1]["model"] == "judge-2"
    # So is another temperature, or the same model name at another endpoint.
    calls = len(FakeJudge.calls)
    GPTJudge(server, model="judge-1", cache_path=cache, max_retries=0, temperature=0.7).judge(records("right"),
                                                                                           progress=False)  # fmt: skip
    GPTJudge(server + "/", model="judge-1", cache_path=cache, max_retries=0).judge(records("right"), progress=False)
    assert len(FakeJudge.calls) == calls + 1  # the trailing slash is the same endpoint
    GPTJudge(server.replace("127.0.0.1", "localhost"), model="judge-1", cache_path=cache, max_retries=0).judge(
        records("right"), progress=False
    )
    assert len(FakeJudge.calls) == calls + 2


def test_a_judge_that_is_down_fails_each_call_and_the_run_goes_on(tmp_path):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = GPTJudge(f"http://127.0.0.1:{port}/v1", cache_path=tmp_path / "cache.jsonl", max_retries=1,
                     timeout=0.5, initial_backoff=0.01)  # fmt: skip
    started = time.perf_counter()
    verdicts = judge.judge(records("right", "wrong"), progress=False)
    assert time.perf_counter() - started < 10
    assert [verdict.status for verdict in verdicts] == ["failed", "failed"]
    assert "2 tries" in verdicts[0].error
    assert judge_metrics(verdicts)["failed"] == 2 and judge_metrics(verdicts)["accuracy"] is None
    with pytest.raises(JudgeError, match="no reply"):
        judge.complete(judge_messages("q", "a", "p"))


def test_reply_parsing_and_arguments():
    assert parse_judge_reply("{'pred': 'yes', 'score': 4}") == ("yes", 4.0)
    assert parse_judge_reply('{"pred": "No", "score": "2"}') == ("no", 2.0)
    assert parse_judge_reply("Here: {'pred': 'yes', 'score': 4.8} done") == ("yes", 4.8)
    for bad in ("yes, 4", "{'pred': 'maybe', 'score': 3}", "{'pred': 'yes', 'score': 9}", "{'pred': 'yes'}", None,
                "{'pred': 'yes', 'score': True}"):  # fmt: skip
        assert parse_judge_reply(bad) is None
    messages = judge_messages("Q?", "A", "P")
    assert messages[0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    assert "Question: Q?\nCorrect Answer: A\nPredicted Answer: P\n" in messages[1]["content"]
    with pytest.raises(InvalidInputError, match="http"):
        GPTJudge("api.openai.com")
    with pytest.raises(InvalidInputError, match="concurrency"):
        GPTJudge("http://127.0.0.1:1/v1", concurrency=0)
