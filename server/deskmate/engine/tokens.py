"""Counting tokens: tiktoken for OpenAI models, else an estimate calibrated by what the server reports.

A prompt's size decides what history goes with a question, so it must not be guessed
low. Three sources, best first:

- tiktoken (the optional ``tokens`` extra) for models it knows by name. It fetches its
  BPE file from the internet on first use; that load runs in a worker thread once per
  encoding, and until it has succeeded (or when it fails: no internet, no cache) counts
  come from the estimate below. An ask never waits for it.
- calibration: after each answer the server says how many tokens the prompt took
  (``usage.prompt_tokens``); the ratio to the characters sent is learned per model, so a
  model that tokenizes code densely is counted densely from its second ask on.
- a first guess of CHARS_PER_TOKEN characters a token, with ESTIMATE_MARGIN of the
  window kept free for what the guess gets wrong.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .prompt import ANSWER_SHARE
from .settings import Settings

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4  # a chat message's role and separators, as OpenAI counts them
# Of a window, what may be filled when counts are estimates; exact or calibrated counts use more.
ESTIMATE_MARGIN = 0.8
CALIBRATED_MARGIN = 0.9
EXACT_MARGIN = 0.97
# A calibration learns from prompts of at least this many characters (short ones are mostly overhead).
CALIBRATION_MIN_CHARS = 200
# Weight of the newest measurement in the running ratio.
CALIBRATION_WEIGHT = 0.5

Encoder = Callable[[str], int]

# Context windows of models whose servers do not report them (OpenAI's), by name prefix,
# longest prefix first. The contextWindow setting overrides them.
KNOWN_WINDOWS = (
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
)


def known_window(model: str) -> int | None:
    """The context window of a model known by name; None for others."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, window in KNOWN_WINDOWS:
        if name.startswith(prefix):
            return window
    return None


def _tiktoken_encoding_name(model: str) -> str | None:
    """The encoding tiktoken uses for ``model`` (by name only: nothing is downloaded here);
    None when tiktoken is not installed or does not know the model."""
    try:
        import tiktoken.model
    except ImportError:
        return None
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None


def load_encoding(name: str) -> Encoder:
    """tiktoken's encoding ``name`` as a counting function (its first use downloads a file,
    kept in tiktoken's cache; without internet or cache this raises)."""
    import tiktoken

    encoding = tiktoken.get_encoding(name)
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def is_openai(base_url: str | None) -> bool:
    """Whether requests go to OpenAI itself (a local server's "gpt-4o" is another tokenizer)."""
    if base_url is None:
        return True
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


class TokenCounter:
    """Counts the tokens of prompts for the models of one daemon.

    Each method takes the settings in force: their model, and their base URL (tiktoken
    counts only for OpenAI's own servers). ``loader`` turns a tiktoken encoding name into a
    counting function (default: ``load_encoding``); it runs in a worker thread, at most
    once per encoding.
    """

    def __init__(self, loader: Callable[[str], Encoder] | None = None) -> None:
        self._loader = loader
        self._encoders: dict[str, Encoder | None] = {}  # by encoding name; None: loading failed
        self._loading: set[str] = set()
        self._ratios: dict[str, float] = {}  # characters per token, learned per model
        self._lock = threading.Lock()

    # -- which way a model is counted -------------------------------------------------

    def _encoder(self, settings: Settings) -> Encoder | None:
        if not is_openai(settings.base_url):
            return None
        name = _tiktoken_encoding_name(settings.model)
        if name is None:
            return None
        with self._lock:
            if name in self._encoders:
                return self._encoders[name]
            if name not in self._loading:
                self._loading.add(name)
                loader = self._loader or load_encoding
                threading.Thread(target=self._load, args=(name, loader), daemon=True, name="tiktoken").start()
        return None

    def _load(self, name: str, loader: Callable[[str], Encoder]) -> None:
        try:
            encoder: Encoder | None = loader(name)
        except Exception as exc:  # no internet and no cached file, most often
            log.info("tiktoken's %s is not available (%s); token counts are estimated", name, exc)
            encoder = None
        with self._lock:
            self._encoders[name] = encoder
            self._loading.discard(name)

    def wait_loaded(self, timeout: float = 5.0) -> None:
        """Wait for encodings being loaded (for tests and benchmarks)."""
        import time

        deadline = time.monotonic() + timeout
        while self._loading and time.monotonic() < deadline:
            time.sleep(0.01)

    def method(self, settings: Settings) -> str:
        """How the model's tokens are counted now: ``tiktoken``, ``calibrated`` or ``estimated``."""
        if self._encoder(settings) is not None:
            return "tiktoken"
        return "calibrated" if settings.model in self._ratios else "estimated"

    def margin(self, settings: Settings) -> float:
        """The share of a context window a prompt counted this way may fill."""
        return {"tiktoken": EXACT_MARGIN, "calibrated": CALIBRATED_MARGIN}.get(
            self.method(settings), ESTIMATE_MARGIN
        )

    # -- counting -----------------------------------------------------------------------

    def text(self, settings: Settings, text: str) -> int:
        """The tokens of ``text`` as the model counts them (a calibrated estimate where
        tiktoken cannot say)."""
        encoder = self._encoder(settings)
        if encoder is not None:
            return encoder(text)
        ratio = self._ratios.get(settings.model, CHARS_PER_TOKEN)
        return int(len(text) / ratio + 0.999)

    def message(self, settings: Settings, content: str) -> int:
        """The tokens one chat message of ``content`` takes, its overhead included."""
        return self.text(settings, content) + MESSAGE_OVERHEAD_TOKENS

    def prompt(self, settings: Settings, messages: list[dict[str, Any]]) -> int:
        return sum(self.message(settings, str(m.get("content") or "")) for m in messages)

    def calibrate(self, settings: Settings, messages: list[dict[str, Any]], prompt_tokens: int) -> None:
        """Learn from the server's count of a prompt it was sent. Ignored for models tiktoken
        counts, and for prompts too short to say much."""
        if prompt_tokens <= 0 or self._encoder(settings) is not None:
            return
        model = settings.model
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        content_tokens = prompt_tokens - MESSAGE_OVERHEAD_TOKENS * len(messages)
        if chars < CALIBRATION_MIN_CHARS or content_tokens <= 0:
            return
        measured = chars / content_tokens
        previous = self._ratios.get(model)
        ratio = measured if previous is None else previous + CALIBRATION_WEIGHT * (measured - previous)
        # Never count more generously than measured: a dense prompt after sparse ones must fit.
        self._ratios[model] = min(ratio, measured)
        log.debug("model %s: %.2f characters a token (measured %.2f)", model, self._ratios[model], measured)


async def context_window(settings: Settings, model: Any) -> int | None:
    """The model's context window: the contextWindow setting, else what its server reports
    (``model.context_window()``), else what is known of the model by name; None: unknown."""
    if settings.context_window is not None:
        return settings.context_window
    return await model.context_window() or known_window(settings.model)


def prompt_limit(
    settings: Settings, counter: TokenCounter, window: int | None, answer: int | None = None
) -> int | None:
    """The most tokens a prompt may take in ``window``: the share the counting is sure of, less
    room for the answer (``answer``, else maxTokens, else a quarter of the window)."""
    if window is None:
        return None
    if answer is None:
        answer = settings.max_tokens if settings.max_tokens is not None else window // ANSWER_SHARE
    return int(window * counter.margin(settings)) - min(answer, window // 2)
