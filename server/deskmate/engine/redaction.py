"""Secret redaction: API keys, tokens, private key blocks, passwords in URLs and ``.env``-style
``KEY=secret`` lines become ``[redacted: <kind>]`` before a question is stored or sent.

The token shapes are detect-secrets' (its plugins' ``denylist`` patterns, kept up to date by
that project) plus a few it lacks. detect-secrets' own scanner is not used: it runs every
plugin line by line, took 850 ms on 100 KB of ordinary code, and its entropy and keyword
plugins flagged thousands of strings there. Searching 30 patterns one by one with ``re`` costs
2-3 ms on 100 KB, over the 1 ms budget, so one RE2 set (google-re2, linear time) scans the
text once and says which patterns can match; only those run (benchmarks/redaction_benchmark.py).
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# detect-secrets plugin module -> {class: the kind named in "[redacted: <kind>]"}. Only plugins
# whose patterns are the token's own shape: the entropy, keyword, IP and vendor-keyword plugins
# flag ordinary code. Discord, Telegram and Mailchimp shapes have no distinctive text and
# matched identifiers in code; JWT's pattern ends lazily and would leave the signature.
_DETECT_SECRETS_PLUGINS = {
    "aws": {"AWSKeyDetector": "AWS key"},
    "azure_storage_key": {"AzureStorageKeyDetector": "Azure storage key"},
    "github_token": {"GitHubTokenDetector": "GitHub token"},
    "gitlab_token": {"GitLabTokenDetector": "GitLab token"},
    "npm": {"NpmDetector": "npm token"},
    "openai": {"OpenAIDetector": "OpenAI key"},
    "pypi_token": {"PypiTokenDetector": "PyPI token"},
    "sendgrid": {"SendGridDetector": "SendGrid key"},
    "slack": {"SlackDetector": "Slack token"},
    "square_oauth": {"SquareOAuthDetector": "Square secret"},
    "stripe": {"StripeDetector": "Stripe key"},
}
# detect-secrets patterns whose first group is the secret (what precedes it is its name).
_SECRET_IN_GROUP = {"AWSKeyDetector", "NpmDetector"}

# Shapes detect-secrets has no plugin for, or matches only in part: (kind, pattern, flags,
# which group is the secret, 0 for the whole match).
_OWN_PATTERNS: list[tuple[str, str, int, int] | tuple[str, str, int, int, str]] = [
    # The whole block, not only its first line as detect-secrets' PrivateKeyDetector.
    (
        "private key",
        r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.DOTALL,
        0,
    ),
    ("OpenAI key", r"sk-(?<![A-Za-z0-9]sk-)(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}", 0, 0),
    ("Anthropic key", r"sk-ant-(?<![A-Za-z0-9]sk-ant-)[A-Za-z0-9_-]{20,}", 0, 0),
    ("OpenAI key", r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9]{40,}\b", 0, 0),
    ("Google API key", r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_-]{35}\b", 0, 0),
    ("Hugging Face token", r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z0-9]{30,}\b", 0, 0),
    (
        "JSON web token",
        r"eyJ(?<![A-Za-z0-9]eyJ)[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        0,
        0,
    ),
    # scheme://user:password@host, the password only: detect-secrets' BasicAuthDetector shape.
    (
        "password in URL",
        r"://[^:/?#\[\]@!$&'()*+,;=\s]+:([^:/?#\[\]@!$&'()*+,;=\s]+)@",
        0,
        1,
        r"(?i)password|passwd|pass|secret|pwd?|token|x+|\*+",  # s3://KEY:SECRET@bucket in a docstring
    ),
    # NAME_WITH_KEY_TOKEN_SECRET_OR_PASSWORD=value at the start of a line, no spaces around
    # "=", a value of 8 characters or more that is not a reference ($VAR, ${VAR}).
    (
        "secret in .env line",
        r"^[ \t]*(?:export[ \t]+)?[A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIALS?)"
        r"[A-Z0-9_]*=([\"']?[^\s\"'$][^\s\"']{7,}[\"']?)[ \t]*$",
        re.MULTILINE,
        1,
    ),
]


@dataclass
class Redaction:
    """What redacting a question found: how many of each kind."""

    counts: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def kinds(self) -> list[dict[str, Any]]:
        """For the wire: ``[{"kind": "AWS key", "count": 2}, ...]``, in the order first found."""
        return [{"kind": kind, "count": count} for kind, count in self.counts.items()]

    def summary(self) -> str:
        """``"2 AWS keys and 1 password in URL"``: for the user's notice."""
        parts = [f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in self.counts.items()]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def notice(self) -> str:
        """What the user is told, once per ask (an editor notification; stderr in a terminal)."""
        return (
            f"deskmate: redacted {self.summary()} from your question before storing and sending it "
            "(turn off with the redactSecrets setting)."
        )


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    group: int = 0  # the group that is the secret; 0: the whole match
    placeholder: re.Pattern[str] | None = None  # secrets that are words in documentation

    def redact(self, text: str, found: Redaction) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if "[redacted: " in whole or (self.group and match.group(self.group) is None):
                return whole
            if self.placeholder is not None and self.placeholder.fullmatch(match.group(self.group)):
                return whole
            found.counts[self.kind] += 1
            label = f"[redacted: {self.kind}]"
            if not self.group:
                return label
            start, end = match.start(self.group) - match.start(), match.end(self.group) - match.start()
            return whole[:start] + label + whole[end:]

        return self.pattern.sub(replace, text)


def _detect_secrets_detectors() -> list[_Detector]:
    detectors = []
    for module_name, classes in _DETECT_SECRETS_PLUGINS.items():
        try:
            module = importlib.import_module(f"detect_secrets.plugins.{module_name}")
        except ImportError:
            continue
        for class_name, kind in classes.items():
            for pattern in getattr(module, class_name).denylist:
                group = 1 if class_name in _SECRET_IN_GROUP and pattern.groups else 0
                detectors.append(_Detector(kind, pattern, group))
    return detectors


@functools.cache
def _detectors() -> list[_Detector]:
    """Every detector; ours first (a private key block goes whole before a token inside it is seen)."""
    own = [
        _Detector(kind, re.compile(source, flags), group, re.compile(rest[0]) if rest else None)
        for kind, source, flags, group, *rest in _OWN_PATTERNS
    ]
    return own + _detect_secrets_detectors()


_LOOKAROUND = re.compile(r"\(\?<?[=!][^()]*\)")
_RE2_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
_LONG_REPEAT = re.compile(r"\{(\d+),\d{4,}\}")


def _re2_source(source: str) -> str:
    """``source`` in RE2's syntax, matching at least what it matches: lookarounds dropped,
    ``\\Z`` spelt ``\\z``, repeats over RE2's limit of 1,000 left open."""
    source = _LOOKAROUND.sub("", source).replace(r"\Z", r"\z")
    return _LONG_REPEAT.sub(r"{\1,}", source)


@functools.cache
def _prefilter() -> tuple[Any, dict[int, int], list[int]] | None:
    """An RE2 set of every detector's pattern (lookarounds dropped: RE2 has none, and without
    them a pattern matches more, never less), the detector of each set entry, and the
    detectors RE2 cannot take (always run). None without google-re2: every detector runs."""
    try:
        import re2
    except ImportError:
        log.info("google-re2 is not installed: secret redaction runs every pattern (slower)")
        return None
    prefilter = re2.Set.SearchSet(re2.Options())
    entries: dict[int, int] = {}
    always: list[int] = []
    for index, detector in enumerate(_detectors()):
        flags = "".join(letter for flag, letter in _RE2_FLAGS if detector.pattern.flags & flag)
        source = _re2_source(detector.pattern.pattern)
        if detector.pattern.flags & re.VERBOSE and re.search(r"\s", source):
            always.append(index)
            continue
        entry = prefilter.Add(f"(?{flags}){source}" if flags else source)
        if entry < 0:  # a construct RE2 lacks (it logs which): run this one every time
            always.append(index)
        else:
            entries[entry] = index
    prefilter.Compile()
    return prefilter, entries, always


def redact(text: str, found: Redaction) -> str:
    """``text`` with every secret replaced by ``[redacted: <kind>]``; counts added to ``found``."""
    detectors = _detectors()
    prefilter = _prefilter()
    if prefilter is None:
        candidates = range(len(detectors))
    else:
        matcher, entries, always = prefilter
        hits = matcher.Match(text) or ()
        if not hits and not always:
            return text
        candidates = sorted({entries[hit] for hit in hits} | set(always))
    for index in candidates:
        text = detectors[index].redact(text, found)
    return text


_CONTEXT_TEXT = ("text", "note")


def redact_question(
    question: str, context: dict[str, Any] | None
) -> tuple[str, dict[str, Any] | None, Redaction]:
    """The question and its context with secrets redacted (the ``text`` and ``note`` of the context
    and of each attachment),
    and what was found. The context is copied only when something in it changes."""
    found = Redaction()
    question = redact(question, found)
    if context is not None:
        context = _redact_context(context, found)
        attachments = context.get("attachments")
        if attachments:
            redacted = [_redact_context(attachment, found) for attachment in attachments]
            if any(new is not old for new, old in zip(redacted, attachments, strict=True)):
                context = {**context, "attachments": redacted}
    return question, context, found


def _redact_context(context: dict[str, Any], found: Redaction) -> dict[str, Any]:
    """``context`` with its ``text`` and ``note`` redacted; the same object when nothing changed."""
    changed = {key: redact(context[key], found) for key in _CONTEXT_TEXT if isinstance(context.get(key), str)}
    if any(changed[key] != context[key] for key in changed):
        return {**context, **changed}
    return context
