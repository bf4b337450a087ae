"""Talking to an OpenAI-compatible model server through the official ``openai`` SDK.

The SDK (and msgspec, with the stream reader) is imported on first use: it is the
heaviest import of the daemon and the editor should get its ``initialize`` answer
without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..memory.urls import redact
from .settings import Settings

log = logging.getLogger(__name__)

# Sent to local servers (Ollama, llama.cpp, vLLM...) that want no key: the SDK insists on one.
LOCAL_PLACEHOLDER_KEY = "no-key"
DRAIN_SECONDS = 0.1  # how long the end of a finished body may take before its connection is dropped
PROBE_SECONDS = 2.0  # how long asking a server for its context window may take
# How servers word a prompt longer than their context: llama.cpp ("exceeds the available
# context size"), llama-cpp-python ("exceed context window"), OpenAI and vLLM ("maximum
# context length"), others ("prompt is too long", "too many tokens").
_OVERFLOW_RE = re.compile(
    r"context (size|window|length)|maximum context|prompt is too long|too many tokens|context_length_exceeded",
    re.IGNORECASE,
)
_WINDOW_IN_MESSAGE_RE = re.compile(
    r"(?:maximum context length is|context window of|context size of|n_ctx[\s=:]+)\D{0,3}(\d+)", re.IGNORECASE
)


def preload() -> None:
    """Import what a first question needs (the SDK, msgspec and the stream reader): slow
    imports, meant for a worker thread once the editor is served."""
    import msgspec  # noqa: F401
    import openai  # noqa: F401

    from . import completion_stream  # noqa: F401


class ModelError(Exception):
    """The model could not answer; the message tells the user what happened and what to do."""


class ConfigurationError(ModelError):
    """deskmate is not configured well enough to call a model."""


class ContextOverflow(ModelError):
    """The prompt did not fit the model's context window; ``window`` is its size when known."""

    def __init__(self, message: str, window: int | None = None) -> None:
        super().__init__(message)
        self.window = window


@dataclass(frozen=True)
class Finished:
    """Why the answer ended, as the server said: ``stop``, ``length`` (a token limit) ..."""

    reason: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_dict(self) -> dict[str, int]:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
        }


class ModelClient:
    """Streams chat completions; one client (and connection pool) per model configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._windows: dict[str, int | None] = {}  # context window by model, once asked

    async def context_window(self) -> int | None:
        """The model's context window in tokens, where the server reports it (llama.cpp's
        ``/props``, Ollama's ``/api/show``); asked once per model, None when unknown."""
        model = self.settings.model
        if model not in self._windows:
            self._windows[model] = await self._probe_window(model) if self.settings.base_url else None
        return self._windows[model]

    def learn_window(self, window: int) -> None:
        """A window the server named in an error (it knows best)."""
        self._windows[self.settings.model] = window

    async def check_server(self) -> tuple[bool, str]:
        """Whether the model server answers (``GET <baseUrl>/models``, PROBE_SECONDS at most),
        and a sentence saying what was found or what failed."""
        self.check_configured()
        import openai

        settings = self.settings
        base = redact(settings.base_url or "https://api.openai.com/v1").rstrip("/")
        options = {"timeout": PROBE_SECONDS, "max_retries": 0}
        try:
            response = await self._sdk_client().get("/models", cast_to=_raw_response_type(), options=options)
            data = response.json().get("data")
        except openai.NotFoundError as exc:
            if not base.endswith("/v1") and await self._served_models("/v1/models") is not None:
                return False, f"{base}/models answered HTTP 404: the base URL is likely missing /v1."
            return False, f"{base}/models answered HTTP 404 ({_server_message(exc)})."
        except openai.APIStatusError as exc:
            return False, f"{base}/models answered HTTP {exc.status_code} ({_server_message(exc)})."
        except openai.APIConnectionError as exc:
            if _is_timeout(exc):
                return False, f"{base} did not answer within {PROBE_SECONDS:g} s."
            return False, f"cannot reach {base} ({describe(_causes(exc)[-1])}). Is it running?"
        except Exception as exc:
            return False, f"{base}/models sent something deskmate cannot read ({describe(exc)})."
        served = (
            [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
            if isinstance(data, list)
            else []
        )
        if served and settings.model not in served:
            return False, (
                f"{base} answers but does not list the model {settings.model!r}; it serves: "
                f"{', '.join(served[:10])}."
            )
        return True, f"{base} answers" + (f" and serves {settings.model!r}." if served else ".")

    async def list_models(self) -> list[str]:
        """The model ids the server lists (``GET <baseUrl>/models``); raises ModelError saying
        what failed when it does not answer with a list."""
        self.check_configured()
        served = await self._served_models("/models")
        if served is None:  # why: the same sentence as a health check gives
            ok, message = await self.check_server()
            if ok:
                message = f"{message.rstrip('.')}, but does not list its models (GET /models)."
            raise ModelError(f"deskmate could not list the models: {message}")
        return served

    async def _served_models(self, url: str) -> list[str] | None:
        """The model ids a ``/models`` path under the base URL lists, or None when it lists
        none (or fails)."""
        options = {"timeout": PROBE_SECONDS, "max_retries": 0}
        try:
            response = await self._sdk_client().get(url, cast_to=_raw_response_type(), options=options)
            data = response.json().get("data")
        except Exception as exc:
            log.debug("no model list at %s: %s", url, describe(exc))
            return None
        if not isinstance(data, list):
            return None
        return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]

    async def _not_found(self, exc: Any) -> str:
        """Why the server answered 404, found by asking it what it serves: a base URL missing
        its ``/v1`` (the most common slip), or a model it does not have."""
        settings = self.settings
        base = redact(settings.base_url or "").rstrip("/")
        served = await self._served_models("/models") if base else None
        if base and served is None and not base.endswith("/v1"):
            if await self._served_models("/v1/models") is not None:
                return (
                    f"The model server at {base} answered HTTP 404: the base URL is likely missing /v1 "
                    f"(the server answers at {base}/v1). Set deskmate.baseUrl to {base}/v1."
                )
        listed = f" It serves: {', '.join(served[:10])}." if served else ""
        return (
            f"The model server at {base or 'the OpenAI API'} does not know the model {settings.model!r} "
            f"(HTTP 404: {_server_message(exc)}).{listed} Set deskmate.model to a model it serves."
        )

    async def _probe_window(self, model: str) -> int | None:
        root = server_root(self.settings.base_url or "")
        client = self._sdk_client()
        options = {"timeout": PROBE_SECONDS, "max_retries": 0}
        try:
            response = await client.get(f"{root}/props", cast_to=_raw_response_type(), options=options)
            window = _window_of_props(response.json())
            if window:
                return window
        except Exception as exc:  # not llama.cpp, or it does not say: try the next kind
            log.debug("no context window at %s/props: %s", root, describe(exc))
        try:
            response = await client.post(
                f"{root}/api/show", cast_to=_raw_response_type(), body={"model": model}, options=options
            )
            return _window_of_ollama(response.json())
        except Exception as exc:
            log.debug("no context window at %s/api/show: %s", root, describe(exc))
        return None

    def check_configured(self) -> None:
        """Raise ConfigurationError, saying what to set, when no model can be reached."""
        settings = self.settings
        if settings.resolved_api_key() is None and settings.base_url is None:
            raise ConfigurationError(
                f"No API key is configured. Set the environment variable {settings.api_key_env} "
                "(or name another one in deskmate.apiKeyEnv), or set deskmate.baseUrl "
                "to a local OpenAI-compatible server such as http://127.0.0.1:11434/v1 (Ollama)."
            )

    def _sdk_client(self) -> Any:
        if self._client is None:
            self.check_configured()
            settings = self.settings
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=settings.resolved_api_key() or LOCAL_PLACEHOLDER_KEY,
                base_url=settings.base_url,
                timeout=settings.request_timeout,
                max_retries=settings.max_retries,
                http_client=_aiohttp_client(openai, settings.base_url),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def stream(
        self, messages: list[dict[str, str]], settings: Settings | None = None
    ) -> AsyncIterator[str | Usage]:
        """Yield the answer's text pieces in order, then its Usage if the server reports one.
        ``settings`` replaces the client's for this request's model and limits (a summary).

        Raises ModelError with a message meant for the user.
        """
        client = self._sdk_client()
        import msgspec
        import openai

        settings = settings or self.settings
        body: dict[str, Any] = {
            "model": settings.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            body["max_tokens"] = settings.max_tokens
        try:
            # The SDK sends the request (base URL, auth and default headers, retries with
            # backoff, timeouts, HTTP errors as its exception types) and hands the response back
            # unread. The body is the chat.completions.create JSON, encoded by msgspec: the SDK
            # would walk every message through its type transforms and the json module (0.3 ms
            # of the first token for a 37 KB history, measured). The answer's events are read
            # by completion_stream, not the SDK's chunk models.
            response = await client.post(
                "/chat/completions",
                cast_to=_raw_response_type(),
                **{_bytes_parameter(client): msgspec.json.encode(body)},
                options={"headers": {"Content-Type": "application/json"}},
                stream=True,
            )
            try:
                async with contextlib.aclosing(_read_answer(response.aiter_bytes(), settings)) as answer:
                    async for item in answer:
                        yield item
            finally:
                await response.aclose()  # closing it tells the server to stop (e.g. after a cancel)
        except openai.NotFoundError as exc:
            raise ModelError(await self._not_found(exc)) from exc
        except openai.BadRequestError as exc:
            message = _server_message(exc)
            if _OVERFLOW_RE.search(message) or _OVERFLOW_RE.search(str(getattr(exc, "code", "") or "")):
                raise ContextOverflow(explain(exc, settings), _window_in_error(exc)) from exc
            raise ModelError(explain(exc, settings)) from exc
        except openai.APIError as exc:
            raise ModelError(explain(exc, settings)) from exc
        except ModelError:
            raise
        except Exception as exc:  # the stream's transport failing under the SDK (e.g. a reset)
            if _is_timeout(exc):
                raise ModelError(_timed_out(settings)) from exc
            raise ModelError(
                f"The connection to the model server was lost in the middle of the answer ({describe(exc)})."
            ) from exc


async def _read_answer(body: AsyncIterator[bytes], settings: Settings) -> AsyncIterator[str | Usage]:
    """The text of every chunk as it arrives, then the usage; the body is read to its end after
    ``[DONE]`` (briefly) so the connection can serve the next request."""
    import msgspec

    from .completion_stream import DONE, EventSplitter, decode_chunk

    events = EventSplitter()
    usage: Usage | None = None
    finish: str | None = None
    done = False
    async for data in body:
        for event, payload in events.feed(data):
            if payload.startswith(DONE):
                done = True
                break
            try:
                chunk = decode_chunk(payload)
            except msgspec.DecodeError as exc:
                raise ModelError(
                    f"The model server at {settings.base_url or 'the OpenAI API'} sent a chunk deskmate "
                    f"cannot read ({exc})."
                ) from exc
            if chunk.error is not None or event == b"error":
                raise ModelError(_stream_error(chunk.error, settings))
            text = chunk.text()
            if text:
                yield text
            finish = chunk.finish_reason() or finish
            if chunk.usage is not None:
                found = chunk.usage
                usage = Usage(found.prompt_tokens or 0, found.completion_tokens or 0, found.total_tokens or 0)
        if done:
            break
    if finish is not None:
        yield Finished(finish)
    if usage is not None:
        yield usage
    if done:
        await _drain(body)


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (normally just the end of the body) for at most 0.1 s."""

    async def rest() -> None:
        async for _ in body:
            pass

    try:
        await asyncio.wait_for(rest(), DRAIN_SECONDS)
    except Exception:  # the answer is complete; a connection that cannot be reused is closed
        pass


def server_root(base_url: str) -> str:
    """The server's own root under an OpenAI-compatible base URL (``…/v1`` taken off): where
    llama.cpp and Ollama serve their native endpoints."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _positive(value: Any) -> int | None:
    return value if type(value) is int and value > 0 else None


def _window_of_props(props: Any) -> int | None:
    """llama.cpp: ``{"default_generation_settings": {"n_ctx": N}}`` (older builds: ``n_ctx`` at the top)."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    found = settings.get("n_ctx") if isinstance(settings, dict) else None
    return _positive(found) or _positive(props.get("n_ctx"))


def _window_of_ollama(show: Any) -> int | None:
    """Ollama: the ``num_ctx`` it runs the model with, else the model's trained length."""
    if not isinstance(show, dict):
        return None
    match = re.search(r"^num_ctx\s+(\d+)", str(show.get("parameters") or ""), re.MULTILINE)
    if match:
        return _positive(int(match.group(1)))
    info = show.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if key.endswith(".context_length") and _positive(value):
                return value
    return None


def _window_in_error(exc: Any) -> int | None:
    """The context size a refusal names: llama.cpp's ``n_ctx`` field, or a number in the message."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and _positive(error.get("n_ctx")):
        return error["n_ctx"]
    match = _WINDOW_IN_MESSAGE_RE.search(_server_message(exc))
    return _positive(int(match.group(1))) if match else None


def _stream_error(error: Any, settings: Settings) -> str:
    where = settings.base_url or "the OpenAI API"
    message = error.get("message") if isinstance(error, dict) else error
    return f"The model server at {where} failed in the middle of the answer: {message or 'no message'}"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from, outermost first."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return chain


def _is_timeout(exc: BaseException) -> bool:
    """Whether a clock ran out under ``exc``. Told by the causes, not the type: the SDK's aiohttp
    transport reports a refused or lost connection as a ConnectTimeout too."""
    return any(isinstance(cause, (TimeoutError, asyncio.TimeoutError)) for cause in _causes(exc))


def _timed_out(settings: Settings) -> str:
    where = settings.base_url or "the OpenAI API"
    retries = f" after {settings.max_retries} retries" if settings.max_retries else ""
    return (
        f"The model server at {where} did not answer within {settings.request_timeout:g} s{retries} "
        "(setting deskmate.requestTimeout)."
    )


@functools.cache
def _bytes_parameter_of(post: Any) -> str:
    return "content" if "content" in inspect.signature(post).parameters else "body"


def _bytes_parameter(client: Any) -> str:
    """How the SDK's ``post`` takes a body of bytes: ``content`` (newer SDKs; ``body=bytes``
    is deprecated there) or ``body`` (older ones)."""
    return _bytes_parameter_of(type(client).post)


def _raw_response_type() -> type:
    """The HTTP response class of the SDK's HTTP library: asked for it, the SDK returns the
    response itself, its body not yet read."""
    try:
        import httpx2

        return httpx2.Response
    except ImportError:  # SDKs before httpx2
        import httpx

        return httpx.Response


def _aiohttp_client(openai: Any, base_url: str | None) -> Any:
    """The SDK's aiohttp transport (``openai[aiohttp]``), or None for its default (httpx).

    Every read of a streamed answer through httpx goes through anyio and h11 in Python;
    aiohttp's reader is C. Measured with the daemon benchmark at 2,000 chunks/s: the
    daemon's CPU drops from about 23% to 11% of a core. Proxies, TLS settings and
    timeouts are the SDK's as before. A base URL with credentials in it stays on httpx:
    aiohttp refuses a URL's user:password beside the SDK's Authorization header.
    """
    if base_url and urlsplit(base_url).username is not None:
        return None
    make = getattr(openai, "DefaultAioHttpClient", None)
    if make is None:  # an SDK older than its aiohttp transport
        return None
    try:
        return make()
    except RuntimeError:  # the aiohttp extra is not installed
        return None


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(exc, "message", "") or exc)


def explain(exc: Exception, settings: Settings) -> str:
    """Turn an SDK error into a sentence a user can act on; the API key never appears in it."""
    message = _explain(exc, settings)
    key = settings.resolved_api_key()
    return message.replace(key, "***") if key else message


def _explain(exc: Exception, settings: Settings) -> str:
    import openai

    where = settings.base_url or "the OpenAI API"
    retries = f" after {settings.max_retries} retries" if settings.max_retries else ""
    if isinstance(exc, openai.AuthenticationError):
        if settings.api_key:
            check = "Check the API key your editor passes (in VS Code: the deskmate: Set API Key command)."
        else:
            check = f"Check the key in {settings.api_key_env} (the variable named by deskmate.apiKeyEnv)."
        return f"The model server at {where} rejected the API key (HTTP 401: {_server_message(exc)}). {check}"
    if isinstance(exc, openai.PermissionDeniedError):
        return f"The API key may not use model {settings.model!r} (HTTP 403: {_server_message(exc)})."
    if isinstance(exc, openai.NotFoundError):
        return (
            f"The model server at {where} does not know the model {settings.model!r} "
            f"(HTTP 404: {_server_message(exc)}). Set deskmate.model to a model it serves."
        )
    if isinstance(exc, openai.RateLimitError):
        return (
            f"The model server at {where} is rate-limiting requests (HTTP 429){retries}: "
            f"{_server_message(exc)} Wait a moment and ask again."
        )
    if isinstance(exc, openai.APITimeoutError) and _is_timeout(exc):
        return _timed_out(settings)
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError too, when no clock ran out
        detail = describe(_causes(exc)[-1])
        return f"Cannot reach the model server at {where}{retries} ({detail}). Is it running?"
    if isinstance(exc, openai.APIStatusError):
        return f"The model server at {where} failed (HTTP {exc.status_code}){retries}: {_server_message(exc)}"
    return f"The model server at {where} sent something deskmate cannot use ({describe(exc)})."
