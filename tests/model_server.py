"""A fake OpenAI-compatible chat server for tests and benchmarks.

Runs on 127.0.0.1 only and never touches the internet. Behaviour is steered by
directives such as ``[[tokens:5]]`` or ``[[fail:429]]`` inside the last user
message (see ``parse_directives``).

Use in-process::

    with ModelServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k")

or out-of-process (Lua, Node tests)::

    python tests/model_server.py [--port 0] [--chunk-delay SECONDS]

which prints ``READY http://127.0.0.1:PORT/v1`` once listening and serves until
SIGTERM/SIGINT. ``GET /_requests`` returns the recorded bodies and
``DELETE /_requests`` clears them.

``context_window=N`` (``--context-window N``) makes it a small local model: a prompt of
more than N tokens (4 characters a token) is refused with HTTP 400 as llama.cpp does
(``exceed_context_size_error``), and an answer stops with ``finish_reason: "length"``
when prompt and answer fill the window. ``flavor`` says where the window is reported:
``llama.cpp`` (``GET /props``), ``ollama`` (``POST /api/show``) or ``none``.
``canned`` (``--canned FILE.json``) answers a question starting with one of its keys with
that key's answer: realistic conversations for the README's pictures.
``[[error-after:N]]`` fails mid-answer (an error event after N pieces, as llama.cpp
sends); ``[[length:N]]`` cuts the answer after N pieces with ``finish_reason: "length"``.

Every answer reports its usage; ``chars_per_token`` (``--chars-per-token``, default 4) is how
densely it counts prompts, for the usage and the window (2: a model that tokenizes like code).
A request whose system message asks to condense a conversation (deskmate's summaries) is
answered with ``Summary of N messages: ...`` (the first words of each question), after
``summary_delay`` seconds, or fails with HTTP ``summary_fail`` when that is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:  # typing.Self needs 3.11; the project supports 3.10
    from typing_extensions import Self

log = logging.getLogger("deskmate.model_server")

KNOWN_DIRECTIVES = (
    "fail-once",
    "fail",
    "hang-after",
    "hang",
    "disconnect-after",
    "error-after",
    "length",
    "rate",
    "tokens",
    "answer",
)
# Only known names are directives, so ordinary text like "[[Wiki Page]]" survives.
DIRECTIVE_RE = re.compile(
    r"\[\[(" + "|".join(map(re.escape, KNOWN_DIRECTIVES)) + r")(?::(.*?))?\]\]",
    re.DOTALL,
)
WORD_RE = re.compile(r"\s*\S+\s*")
FLAVORS = ("llama.cpp", "ollama", "none")
ERROR_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
ERROR_CODES = {429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}


def content_text(content: Any) -> str:
    """Text of a message content: a string or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def parse_directives(text: str) -> tuple[dict[str, str], str]:
    """Return ({name: value}, text with directives removed and stripped)."""
    directives = {m.group(1): m.group(2) or "" for m in DIRECTIVE_RE.finditer(text)}
    return directives, DIRECTIVE_RE.sub("", text).strip()


SUMMARY_MARK = "condense the start of a conversation"


def summary_of(transcript: str) -> str:
    """A summary as a test can check it: how many messages, and the first words of each question."""
    questions = re.findall(r"^User: (.*)$", transcript, re.MULTILINE)
    answers = re.findall(r"^Assistant: ", transcript, re.MULTILINE)
    gist = "; ".join(" ".join(word[:20] for word in DIRECTIVE_RE.sub("", q).split()[:3]) for q in questions)
    earlier = " (with an earlier summary)" if transcript.startswith("Earlier summary:") else ""
    return f"Summary of {len(questions) + len(answers)} messages{earlier}: {gist}"


def split_words(text: str) -> list[str]:
    """Split into one-word chunks that keep all whitespace, so "".join() == text."""
    return WORD_RE.findall(text) or ([text] if text else [])


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(status: int, message: str, type_: str, code: str | None) -> web.Response:
    headers = {}
    if status == 429 or status >= 500:
        # Keep SDK retries fast: retry-after 0 alone falls back to ~0.5 s backoff,
        # the ms variant (preferred by the OpenAI SDKs) makes it ~1 ms.
        headers = {"retry-after": "0", "retry-after-ms": "1"}
    return web.json_response(error_body(message, type_, code), status=status, headers=headers)


def simulated_error(status: int) -> web.Response:
    type_ = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return error_response(status, f"Simulated error {status}.", type_, ERROR_CODES.get(status))


class ModelServer:
    """Fake OpenAI chat-completions server running in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        chunk_delay: float = 0.0,
        context_window: int | None = None,
        flavor: str = "llama.cpp",
        models: tuple[str, ...] = ("test-model",),
        canned: dict[str, str] | None = None,
        chars_per_token: float = 4.0,
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("ModelServer only listens on 127.0.0.1")
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}")
        self.context_window = context_window
        self.flavor = flavor
        self.models = list(models)  # what GET /v1/models lists (a test may change it)
        # Realistic answers for pictures (README screenshots): a question that starts with a key
        # is answered with its text, streamed like any answer, with no directive in sight.
        self.canned = dict(canned or {})
        self.chars_per_token = chars_per_token
        self.summary_delay = 0.0
        self.summary_fail: int | None = None
        self.host = host
        self.port = port
        self.chunk_delay = chunk_delay
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._failed_once: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # --- public API -------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of the JSON bodies received on /v1/chat/completions."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> Self:
        """Start serving in a background thread; returns once listening."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="model-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_site(), loop).result()
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- server setup -----------------------------------------------------

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 << 20)  # real servers take long prompts
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        if self.context_window is not None and self.flavor == "llama.cpp":
            app.router.add_get("/props", self._props)
        if self.context_window is not None and self.flavor == "ollama":
            app.router.add_post("/api/show", self._ollama_show)
        app.router.add_get("/_requests", self._get_requests)
        app.router.add_delete("/_requests", self._delete_requests)
        # handler_cancellation: a client hanging up cancels [[hang]] handlers;
        # short shutdown_timeout: stop() must not wait for hung streams.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # --- handlers ---------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "deskmate-tests"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _props(self, request: web.Request) -> web.Response:
        """llama.cpp's server properties: the context size of its slots."""
        return web.json_response(
            {"default_generation_settings": {"n_ctx": self.context_window}, "total_slots": 1}
        )

    async def _ollama_show(self, request: web.Request) -> web.Response:
        """Ollama's model details: the trained length, and the num_ctx it runs with."""
        return web.json_response(
            {
                "parameters": f'num_ctx                        {self.context_window}\nstop "<|end|>"',
                "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            }
        )

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests})

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.json_response({"requests": []})

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "Invalid JSON body.", "invalid_request_error", None)
        if not isinstance(body, dict):
            return error_response(400, "Body must be a JSON object.", "invalid_request_error", None)
        with self._lock:
            self._requests.append(body)

        if request.headers.get("Authorization", "").removeprefix("Bearer ").strip() == "bad-key":
            return error_response(
                401, "Incorrect API key provided: bad-key.", "invalid_request_error", "invalid_api_key"
            )
        model = body.get("model") or "test-model"
        if model == "missing-model":
            return error_response(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )

        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        raw_text = content_text(messages[last_user].get("content")) if last_user is not None else ""
        directives, question = parse_directives(raw_text)
        summarizing = any(
            m.get("role") == "system" and SUMMARY_MARK in content_text(m.get("content")) for m in messages
        )
        if summarizing:  # the transcript quotes earlier questions: their directives are not for now
            directives = {}
        # Reject e.g. [[fail:abc]] with a clear 400 instead of a 500 traceback.
        numeric = {k: v for k, v in directives.items() if k not in ("answer", "hang")}
        chars = sum(len(content_text(m.get("content"))) for m in messages)
        prompt_tokens = max(1, int(chars / self.chars_per_token))
        if self.context_window is not None and prompt_tokens > self.context_window:
            return web.json_response(
                {
                    "error": {
                        "code": 400,
                        "message": "the request exceeds the available context size, try increasing it",
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": prompt_tokens,
                        "n_ctx": self.context_window,
                    }
                },
                status=400,
            )
        for name, value in numeric.items():
            if not re.fullmatch(r"\d+(\.\d+)?" if name == "rate" else r"\d+", value):
                return error_response(
                    400, f"Bad value for [[{name}]]: {value!r}.", "invalid_request_error", None
                )

        if "fail" in directives:
            return simulated_error(int(directives["fail"]))
        if "fail-once" in directives:
            with self._lock:
                first_time = raw_text not in self._failed_once
                self._failed_once.add(raw_text)
            if first_time:
                return simulated_error(int(directives["fail-once"]))
        if "hang" in directives:
            await asyncio.Event().wait()  # cancelled on disconnect or shutdown

        canned = next((answer for key, answer in self.canned.items() if question.startswith(key)), None)
        if summarizing:
            if self.summary_delay:
                await asyncio.sleep(self.summary_delay)
            if self.summary_fail is not None:
                return simulated_error(self.summary_fail)
            pieces = split_words(summary_of(raw_text))
        elif "tokens" in directives:
            pieces = [f"t{i} " for i in range(int(directives["tokens"]))]
        elif canned is not None:
            pieces = split_words(canned)
        elif "answer" in directives:
            pieces = split_words(directives["answer"])
        else:
            earlier = sum(1 for m in messages[: last_user or 0] if m.get("role") in ("user", "assistant"))
            pieces = split_words(f"You asked: {question}. I see {earlier} earlier messages.")

        finish_reason = "stop"
        limit = int(directives["length"]) if "length" in directives else None
        if self.context_window is not None:  # the answer stops when the window is full
            room = max(0, self.context_window - prompt_tokens)
            limit = room if limit is None else min(limit, room)
        if limit is not None and limit < len(pieces):
            pieces, finish_reason = pieces[:limit], "length"
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        if body.get("stream"):
            return await self._stream(request, model, pieces, usage, directives, body, finish_reason)
        if "hang-after" in directives:
            await asyncio.Event().wait()
        if "disconnect-after" in directives:
            request.transport.abort()  # type: ignore[union-attr]
            raise asyncio.CancelledError
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            }
        )

    async def _stream(
        self,
        request: web.Request,
        model: str,
        pieces: list[str],
        usage: dict[str, int],
        directives: dict[str, str],
        body: dict[str, Any],
        finish_reason: str = "stop",
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        delay = 1 / float(directives["rate"]) if "rate" in directives else self.chunk_delay
        hang_after = int(directives["hang-after"]) if "hang-after" in directives else None
        disconnect_after = int(directives["disconnect-after"]) if "disconnect-after" in directives else None
        error_after = int(directives["error-after"]) if "error-after" in directives else None

        async def send(data: dict[str, Any] | str) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            # write() hands the bytes to the socket right away (and drains when the
            # buffer is full), so each chunk reaches the client on its own.
            await response.write(f"data: {text}\n\n".encode())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        try:
            await send(chunk({"role": "assistant", "content": ""}))
            for sent, piece in enumerate(pieces):
                if sent == hang_after:
                    await asyncio.Event().wait()
                if sent == disconnect_after:
                    break
                if sent == error_after:
                    break
                if delay > 0:
                    await asyncio.sleep(delay)
                await send(chunk({"content": piece}))
            # Directives with N >= len(pieces) still trigger after the last piece.
            if hang_after is not None:
                await asyncio.Event().wait()
            if disconnect_after is not None:
                request.transport.abort()  # type: ignore[union-attr]
                return response
            if error_after is not None:  # llama.cpp reports a failure mid-answer as an error event
                await send(
                    {
                        "error": {
                            "code": 500,
                            "message": "Simulated failure mid-answer.",
                            "type": "server_error",
                        }
                    }
                )
                await response.write_eof()
                return response
            await send(chunk({}, finish_reason))
            if (body.get("stream_options") or {}).get("include_usage"):
                await send({**chunk({}), "choices": [], "usage": usage})
            await send("[DONE]")
            await response.write_eof()
        except ConnectionError as exc:  # client went away mid-stream
            log.info("client disconnected mid-stream: %s", exc)
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--context-window", type=int, default=None, help="refuse longer prompts (tokens)")
    parser.add_argument("--flavor", choices=FLAVORS, default="llama.cpp", help="where the window is reported")
    parser.add_argument("--models", default="test-model", help="what /v1/models lists, comma-separated")
    parser.add_argument("--canned", default=None, help="a JSON file {question start: answer} for pictures")
    parser.add_argument("--chars-per-token", type=float, default=4.0, help="how densely prompts are counted")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    with ModelServer(
        port=args.port,
        chunk_delay=args.chunk_delay,
        context_window=args.context_window,
        flavor=args.flavor,
        models=tuple(args.models.split(",")),
        canned=json.loads(open(args.canned, encoding="utf-8").read()) if args.canned else None,
        chars_per_token=args.chars_per_token,
    ) as server:
        print(f"READY {server.base_url}", flush=True)
        while not stopping.wait(0.5):  # timed wait so signals are handled promptly
            pass


if __name__ == "__main__":
    main()
