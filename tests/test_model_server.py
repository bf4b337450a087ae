"""Tests for the fake OpenAI server, driven through the official openai SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

try:
    from tests.model_server import ModelServer
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from model_server import ModelServer

SERVER_SCRIPT = Path(__file__).with_name("model_server.py")


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


@pytest.fixture
def client(server: ModelServer) -> openai.OpenAI:
    server.clear_requests()
    return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=5)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def stream_text(client: openai.OpenAI, messages: list[dict[str, str]], **kwargs: object) -> str:
    stream = client.chat.completions.create(model="test-model", messages=messages, stream=True, **kwargs)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def test_default_answer_counts_history(client: openai.OpenAI, server: ModelServer) -> None:
    history = [user("first"), {"role": "assistant", "content": "reply"}, user("second")]
    messages = [{"role": "system", "content": "be nice"}, *history, user("What is up?")]
    assert stream_text(client, messages) == "You asked: What is up?. I see 3 earlier messages."
    assert server.requests[-1]["messages"] == messages


def test_deltas_arrive_one_word_at_a_time(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="test-model", messages=[user("[[answer:hello  big\nworld]]")], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["hello  ", "big\n", "world"]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_content_parts_and_non_streaming(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "[[answer:exact text ]]"}]
    completion = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": parts}]
    )
    assert completion.choices[0].message.content == "exact text "
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_tokens_and_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="test-model",
        messages=[user("[[tokens:5]]")],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "t0 t1 t2 t3 t4 "
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 5


def test_bad_key_is_401(server: ModelServer) -> None:
    bad = openai.OpenAI(base_url=server.base_url, api_key="bad-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="test-model", messages=[user("hi")])
    assert info.value.code == "invalid_api_key"


def test_missing_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="missing-model", messages=[user("hi")])
    assert info.value.code == "model_not_found"


def test_fail_429(client: openai.OpenAI, server: ModelServer) -> None:
    with pytest.raises(openai.RateLimitError):
        stream_text(client, [user("[[fail:429]]")])
    assert len(server.requests) == 1


def test_fail_once_then_retry_succeeds(client: openai.OpenAI, server: ModelServer) -> None:
    retrying = client.with_options(max_retries=1)
    assert stream_text(retrying, [user("flaky [[fail-once:500]]")]) == (
        "You asked: flaky. I see 0 earlier messages."
    )
    assert len(server.requests) == 2


def test_disconnect_after_raises(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        stream_text(client, [user("[[tokens:10]] [[disconnect-after:3]]")])


def test_hang_times_out(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        stream_text(client.with_options(timeout=0.3), [user("[[hang]]")])


def test_hang_after_times_out_mid_stream(client: openai.OpenAI) -> None:
    received: list[str] = []
    stream = client.with_options(timeout=0.3).chat.completions.create(
        model="test-model", messages=[user("[[tokens:10]] [[hang-after:2]]")], stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "t0 t1 "


def test_server_survives_client_hanging_up(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="test-model", messages=[user("[[tokens:100]] [[rate:200]]")], stream=True
    )
    next(iter(stream))
    stream.close()
    assert stream_text(client, [user("[[answer:still here]]")]) == "still here"


def test_models_endpoint(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["test-model"]


def test_cli_prints_ready_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, base_url = proc.stdout.readline().split()
        assert ready == "READY" and base_url.startswith("http://127.0.0.1:")
        cli_client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=5)
        assert stream_text(cli_client, [user("[[answer:from cli]]")]) == "from cli"

        # Out-of-process tests read and clear the recorded requests over HTTP.
        requests_url = base_url.removesuffix("/v1") + "/_requests"
        with urllib.request.urlopen(requests_url) as resp:
            recorded = json.load(resp)["requests"]
        assert recorded[0]["messages"] == [user("[[answer:from cli]]")]
        urllib.request.urlopen(urllib.request.Request(requests_url, method="DELETE")).close()
        with urllib.request.urlopen(requests_url) as resp:
            assert json.load(resp) == {"requests": []}
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_canned_answers_and_listed_models() -> None:
    with ModelServer(models=("a", "b"), canned={"How do I read": "With `open()`, line by line."}) as srv:
        sdk = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0, timeout=5)
        assert [m.id for m in sdk.models.list()] == ["a", "b"]
        asked = "How do I read a file?\n\nContext from `/p/main.py`:\n```py\npass\n```"
        assert stream_text(sdk, [user(asked)]) == "With `open()`, line by line."
        assert stream_text(sdk, [user("Something else")]).startswith("You asked: Something else.")
