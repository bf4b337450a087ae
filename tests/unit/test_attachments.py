"""Files added to a question (context.attachments): how the model sees them, how secrets in them
are redacted, and what the store accepts."""

from __future__ import annotations

import pytest

from deskmate.engine.prompt import with_context
from deskmate.engine.redaction import redact_question
from deskmate.memory import Message, context_items

CONTEXT = {
    "uri": "file:///p/calc.py",
    "range": {"start": {"line": 7, "character": 0}, "end": {"line": 8, "character": 0}},
    "text": "def add(a, b):\n",
    "languageId": "python",
    "attachments": [{"uri": "file:///p/util.py", "text": "X = 1\n"}],
}


def test_the_model_sees_the_editor_code_then_each_added_file():
    prompt = with_context("how?", CONTEXT)
    assert prompt.startswith("how?\n\nContext from `/p/calc.py`, lines 8-9 (python):\n```python\ndef add")
    assert prompt.endswith("Context from `/p/util.py`:\n```py\nX = 1\n\n```")
    assert [item["uri"] for item in context_items(CONTEXT)] == ["file:///p/calc.py", "file:///p/util.py"]


def test_secrets_in_an_added_file_are_redacted_and_the_rest_kept():
    context = {
        **CONTEXT,
        "attachments": [{"uri": "file:///p/.env", "text": "OPENAI_API_KEY=sk-proj-" + "a" * 40}],
    }
    _, redacted, found = redact_question("q", context)
    assert "sk-proj-" not in redacted["attachments"][0]["text"] and found
    assert redacted["text"] == CONTEXT["text"]
    assert context["attachments"][0]["text"].startswith(
        "OPENAI_API_KEY=sk-proj-"
    )  # the caller's copy is untouched


def test_the_store_checks_attachments_like_the_context():
    Message.from_dict({"role": "user", "content": "q", "context": CONTEXT})
    for bad in ({"attachments": "x"}, {"attachments": [{"text": 5}]}, {"attachments": [{"attachments": []}]}):
        with pytest.raises(ValueError, match="context"):
            Message.from_dict({"role": "user", "content": "q", "context": {"uri": "file:///a", **bad}})
