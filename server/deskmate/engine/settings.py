"""Settings: one dataclass with every default in one place, parsed from editor JSON.

Keys arrive camelCase (``baseUrl``), as editors send them; environment variables
fill what the editor leaves out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..memory import SessionStoreError, validate_session_id
from ..memory.urls import check_url

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = (
    "You are deskmate, a concise assistant for the developer working in this project. "
    "Answer in Markdown. When code is shown, refer to it by file and line."
)


class SettingsError(ValueError):
    """A setting has a value deskmate cannot use; the message names the setting."""


def _string(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise SettingsError(f"setting {key!r} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _required_string(key: str, value: Any) -> str:
    text = _string(key, value)
    if text is None:
        raise SettingsError(f"setting {key!r} must not be empty")
    return text


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"setting {key!r} must be a string, got {type(value).__name__}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"setting {key!r} must be true or false, got {value!r}")
    return value


def _number(low: float, high: float | None):
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"setting {key!r} must be a number, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise SettingsError(f"setting {key!r} must be {bounds}, got {value!r}")
        return float(value)

    return check


def _integer(low: int):
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"setting {key!r} must be an integer, got {value!r}")
        if value < low:
            raise SettingsError(f"setting {key!r} must be at least {low}, got {value!r}")
        return value

    return check


def _choice(*allowed: str):
    def check(key: str, value: Any) -> str:
        if value not in allowed:
            choices = " or ".join(repr(choice) for choice in allowed)
            raise SettingsError(f"setting {key!r} must be {choices}, got {value!r}")
        return value

    return check


def _checked_by(validate):
    """A setting that is a string ``validate`` accepts (a session id, a storage URL)."""

    def check(key: str, value: Any) -> str | None:
        text = _string(key, value)
        if text is None:
            return None
        try:
            return validate(text)
        except SessionStoreError as exc:
            raise SettingsError(f"setting {key!r}: {exc}") from None

    return check


def setting(
    wire: str, check: Callable[[str, Any], Any], default: Any, *, rebuilds_model: bool = False, **kw: Any
):
    """A Settings field: its camelCase name on the wire, its validator, and whether changing it
    needs a new model client (a new connection) rather than applying to the next request."""
    return field(
        default=default, metadata={"wire": wire, "check": check, "rebuilds_model": rebuilds_model}, **kw
    )


@dataclass(frozen=True)
class Settings:
    """Every daemon setting, once: its wire name, default and validator (docs/protocol.md#settings)."""

    model: str = setting("model", _required_string, DEFAULT_MODEL, rebuilds_model=True)
    base_url: str | None = setting("baseUrl", _string, None, rebuilds_model=True)
    api_key_env: str = setting("apiKeyEnv", _required_string, "OPENAI_API_KEY", rebuilds_model=True)
    # Only from clients that keep the key in a secret store; never logged (repr=False).
    api_key: str | None = setting("apiKey", _string, None, rebuilds_model=True, repr=False)
    system_prompt: str = setting("systemPrompt", _text, DEFAULT_SYSTEM_PROMPT)
    temperature: float | None = setting("temperature", _number(0, 2), None)
    max_history_tokens: int = setting("maxHistoryTokens", _integer(0), 8000)
    # Longest answer the model may write (sent as max_tokens); None: the server's own limit.
    max_tokens: int | None = setting("maxTokens", _integer(1), None)
    # The model's context window in tokens; None: what the server reports, else what is known of the model.
    context_window: int | None = setting("contextWindow", _integer(256), None)
    # Summarize the oldest turns when the history no longer fits (engine/compaction.py).
    auto_compact: bool = setting("autoCompact", _bool, True)
    # The model that writes summaries; None: the session's model.
    summary_model: str | None = setting("summaryModel", _string, None)
    # The longest an ask waits for a summary before going on without one (seconds).
    summary_timeout: float = setting("summaryTimeout", _number(1, 600), 30.0)
    auto_save: bool = setting("autoSave", _bool, True)
    # After a session's first answer, the model names it (the first line stays on failure).
    auto_title: bool = setting("autoTitle", _bool, True)
    session_id: str | None = setting("sessionId", _checked_by(validate_session_id), None)
    data_dir: str | None = setting("dataDir", _string, None)
    # Where sessions are stored: file:// (default: <dataDir>), postgresql://, redis://, s3://.
    storage_url: str | None = setting("storageUrl", _checked_by(check_url), None)
    request_timeout: float = setting("requestTimeout", _number(0.1, None), 60.0, rebuilds_model=True)
    max_retries: int = setting("maxRetries", _integer(0), 2, rebuilds_model=True)
    # After an answer's first deskmate/askDelta, text arriving within this many milliseconds goes
    # out as one delta (editors redraw ~60 times a second); 0: every model chunk on its own.
    delta_window_ms: float = setting("deltaWindowMs", _number(0, 1000), 16.0)
    # Replace API keys, tokens, private keys and passwords in a question and its context with
    # "[redacted: <kind>]" before it is stored or sent (engine/redaction.py).
    redact_secrets: bool = setting("redactSecrets", _bool, True)
    # Encrypt what is stored (AES-256-GCM, keys from memory/keys.py) and compress message records.
    encryption: str = setting("encryption", _choice("off", "on"), "off")
    compression: str = setting("compression", _choice("off", "zstd"), "off")
    # Sessions nobody wrote to for this many days go to the trash; None: keep forever (engine/trash.py).
    retention_days: int | None = setting("retentionDays", _integer(1), None)
    # A deleted session stays in the trash this many days before it is purged.
    trash_days: int = setting("trashDays", _integer(1), 30)

    def resolved_api_key(self) -> str | None:
        """The API key to send: the ``apiKey`` setting, else the variable named by ``apiKeyEnv``."""
        return self.api_key or os.environ.get(self.api_key_env) or None

    def merged(self, raw: Any) -> tuple[Settings, list[str]]:
        """A copy with the camelCase keys of ``raw`` applied, and the problems found.

        A key with a bad value keeps its current value and adds a problem naming
        it; unknown keys are ignored. Raises SettingsError if ``raw`` is not an object.
        """
        if raw is None:
            return self, []
        if not isinstance(raw, dict):
            raise SettingsError("deskmate settings must be a JSON object")
        raw = raw.get("deskmate", raw) if isinstance(raw.get("deskmate"), dict) else raw
        changes: dict[str, Any] = {}
        problems: list[str] = []
        for key, value in raw.items():
            spec = _BY_WIRE_NAME.get(key)
            if spec is None:
                log.info("Ignoring unknown setting %r", key)
                continue
            if value is None:  # "unset": back to what the environment or the built-in default says
                changes[spec.name] = getattr(settings_from_environment(), spec.name)
                continue
            try:
                changes[spec.name] = spec.metadata["check"](key, value)
            except SettingsError as exc:
                problems.append(str(exc))
        return dataclasses.replace(self, **changes), problems

    def model_changed(self, other: Settings) -> bool:
        """Whether going to ``other`` needs a new model client (connection settings differ)."""
        return any(getattr(self, name) != getattr(other, name) for name in MODEL_FIELDS)


_BY_WIRE_NAME = {f.metadata["wire"]: f for f in dataclasses.fields(Settings)}
WIRE_NAMES = tuple(_BY_WIRE_NAME)
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(Settings) if f.metadata["rebuilds_model"])


# The environment variable setting each of these in the terminal (``deskmate ask``), where
# there are no editor settings; the daemon takes them as defaults too.
ENVIRONMENT = {
    "model": "DESKMATE_MODEL",
    "baseUrl": "DESKMATE_BASE_URL",
    "apiKeyEnv": "DESKMATE_API_KEY_ENV",
    "dataDir": "DESKMATE_DATA_DIR",
    "storageUrl": "DESKMATE_STORAGE_URL",
    "maxHistoryTokens": "DESKMATE_MAX_HISTORY_TOKENS",
    "maxTokens": "DESKMATE_MAX_TOKENS",
    "contextWindow": "DESKMATE_CONTEXT_WINDOW",
    "summaryModel": "DESKMATE_SUMMARY_MODEL",
    "requestTimeout": "DESKMATE_REQUEST_TIMEOUT",
    "encryption": "DESKMATE_ENCRYPTION",
    "compression": "DESKMATE_COMPRESSION",
    "retentionDays": "DESKMATE_RETENTION_DAYS",
    "trashDays": "DESKMATE_TRASH_DAYS",
}
_SETTING_NAME_RE = re.compile(r"\bdeskmate\.([a-zA-Z]+)\b")


def for_terminal(message: str) -> str:
    """``message`` with the editor settings it names (``deskmate.baseUrl``) named as a terminal
    user sets them (``$DESKMATE_BASE_URL``)."""

    def name(found: re.Match[str]) -> str:
        variable = ENVIRONMENT.get(found.group(1))
        return f"${variable}" if variable else found.group(0)

    return _SETTING_NAME_RE.sub(name, message)


def _setting_from_env(wire: str, text: str) -> Any:
    """An environment variable's value for the setting ``wire``: a number where one is expected."""
    check = _BY_WIRE_NAME[wire].metadata["check"]
    value: Any = text
    if wire in (
        "maxHistoryTokens",
        "maxTokens",
        "contextWindow",
        "requestTimeout",
        "retentionDays",
        "trashDays",
    ):
        try:
            value = json.loads(text)
        except ValueError:
            raise SettingsError(f"${ENVIRONMENT[wire]} must be a number, got {text!r}") from None
    try:
        return check(wire, value)
    except SettingsError as exc:
        raise SettingsError(f"${ENVIRONMENT[wire]}: {exc}") from None


def settings_from_environment() -> Settings:
    """Defaults overridden by the variables of ENVIRONMENT (and OPENAI_BASE_URL); a variable
    whose value deskmate cannot use is skipped with a warning naming it (DESKMATE_ENCRYPTION
    and DESKMATE_COMPRESSION: see _from_env)."""
    env = os.environ
    values: dict[str, Any] = {
        # A value that is neither: logged, and encryption taken as on (fail closed: with no key
        # nothing is stored, and the user is told) rather than store in the clear by mistake.
        "encryption": _from_env("DESKMATE_ENCRYPTION", ("off", "on"), fallback="on"),
        "compression": _from_env("DESKMATE_COMPRESSION", ("off", "zstd"), fallback="off"),
    }
    for wire, variable in ENVIRONMENT.items():
        text = env.get(variable) or (env.get("OPENAI_BASE_URL") if wire == "baseUrl" else None)
        if not text or wire in ("encryption", "compression"):
            continue
        if wire in ("storageUrl", "dataDir", "model", "baseUrl"):  # checked where they are used
            values[_BY_WIRE_NAME[wire].name] = text
            continue
        try:
            values[_BY_WIRE_NAME[wire].name] = _setting_from_env(wire, text)
        except SettingsError as exc:
            log.warning("Ignoring %s", exc)
    return Settings(**values)


def _from_env(name: str, allowed: tuple[str, ...], *, fallback: str) -> str:
    value = os.environ.get(name) or allowed[0]
    if value in allowed:
        return value
    log.error("%s must be %s, not %r; using %r", name, " or ".join(allowed), value, fallback)
    return fallback
