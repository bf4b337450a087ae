"""What the model is sent: system prompt, trimmed history, the question with its context."""

from __future__ import annotations

from deskmate.engine.prompt import build_messages, with_context
from deskmate.memory import Message


def test_history_is_trimmed_oldest_first_and_starts_on_a_question():
    history = []
    for i in range(10):
        history += [
            Message("user", f"question {i} " + "x" * 40),
            Message("assistant", f"answer {i} " + "y" * 40),
        ]
    sent = build_messages("system", history, Message("user", "now"), max_history_tokens=60)
    assert sent[0] == {"role": "system", "content": "system"} and sent[-1]["content"] == "now"
    assert sent[1]["role"] == "user" and "question 9" in sent[1]["content"]
    assert len(sent) == 4


def test_context_with_a_range_names_the_file_lines_and_language():
    context = {
        "uri": "file:///p/main.py",
        "text": "return a + b",
        "languageId": "python",
        "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
    }
    text = with_context("why?", context)
    assert text.startswith(
        "why?\n\nContext from `/p/main.py`, lines 2-3 (python):\n```python\nreturn a + b\n```"
    )


def test_a_cut_context_says_so_to_the_model():
    text = with_context(
        "q", {"uri": "file:///p/big.txt", "text": "abc", "note": "only the first 3 of 9 bytes were read"}
    )
    assert text.endswith("```\n(only the first 3 of 9 bytes were read.)")


def test_a_context_without_text_only_names_the_file():
    assert with_context("q", {"uri": "file:///p/a.py"}) == "q\n\n(The user is looking at `/p/a.py`.)"


def test_fences_grow_around_text_that_holds_a_fence():
    assert "````" in with_context("q", {"uri": "file:///a.md", "text": "```\ncode\n```"})


def test_a_failed_turn_that_produced_nothing_is_not_sent():
    history = [
        Message("user", "first"),
        Message("assistant", "one"),
        Message("user", "lost"),
        Message("assistant", "", status="interrupted", error="Cannot reach the model server"),
        Message("user", "cut"),
        Message("assistant", "half an", status="interrupted", error="connection lost"),
    ]
    sent = build_messages("", history, Message("user", "now"), max_history_tokens=1000)
    assert [m["content"] for m in sent] == ["first", "one", "cut", "half an", "now"]
