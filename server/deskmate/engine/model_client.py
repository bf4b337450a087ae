"""Talking to an OpenAI-compatible model server through the official ``openai`` SDK.

The SDK is imported on first use: it is the heaviest import of the daemon and
the editor should get its ``initialize`` answer without waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .settings import Settings

log = logging.getLogger(__name__)

# Sent to local servers (Ollama, llama.cpp, vLLM...) that want no key: the SDK insists on one.
LOCAL_PLACEHOLDER_KEY = "no-key"


class ModelError(Exception):
    """The model could not answer; the message tells the user what happened and what to do."""


class ConfigurationError(ModelError):
    """deskmate is not configured well enough to call a model."""


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

    def check_configured(self) -> None:
        """Raise ConfigurationError, saying what to set, when no model can be reached."""
        settings = self.settings
        if settings.resolved_api_key() is None and settings.base_url is None:
            raise ConfigurationError(
                f"No API key is configured. Set the environment variable {settings.api_key_env} "
                "(or name another one in the deskmate.apiKeyEnv setting), or set deskmate.baseUrl "
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
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str | Usage]:
        """Yield the answer's text pieces in order, then its Usage if the server reports one.

        Raises ModelError with a message meant for the user.
        """
        client = self._sdk_client()
        import openai

        settings = self.settings
        options: dict[str, Any] = {}
        if settings.temperature is not None:
            options["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            options["max_tokens"] = settings.max_tokens
        stream = None
        try:
            stream = await client.chat.completions.create(
                model=settings.model,
                # The SDK walks every message through its type transforms (about 0.1 ms each,
                # tens of ms for a long history) before sending; our messages are plain JSON
                # already, so they go in the body as they are. The request is byte-identical.
                messages=[],
                extra_body={"messages": messages},
                stream=True,
                stream_options={"include_usage": True},
                **options,
            )
            async for chunk in stream:
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        yield text
                if chunk.usage is not None:
                    usage = chunk.usage
                    yield Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
        except openai.APIError as exc:
            raise ModelError(explain(exc, settings)) from exc
        except ModelError:
            raise
        except Exception as exc:  # the stream's transport failing under the SDK (e.g. a reset)
            raise ModelError(
                f"The connection to the model server was lost in the middle of the answer ({describe(exc)})."
            ) from exc
        finally:
            if stream is not None:
                # Closing the response tells the server to stop (e.g. after a cancel).
                await stream.close()


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
            check = f"Check the key in {settings.api_key_env} or the deskmate.apiKeyEnv setting."
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
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"The model server at {where} did not answer within {settings.request_timeout:g} s{retries} "
            "(setting deskmate.requestTimeout)."
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = describe(cause) if cause else describe(exc)
        return f"Cannot reach the model server at {where}{retries} ({detail}). Is it running?"
    if isinstance(exc, openai.APIStatusError):
        return f"The model server at {where} failed (HTTP {exc.status_code}){retries}: {_server_message(exc)}"
    return f"The model server at {where} sent something deskmate cannot use ({describe(exc)})."
