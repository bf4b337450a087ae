"""Secret redaction (engine/redaction.py): each kind of secret, nothing in ordinary code, and the
same result with or without the RE2 prefilter."""

from pathlib import Path

import pytest

from deskmate.engine import redaction
from deskmate.engine.redaction import Redaction, redact, redact_question

REPO = Path(__file__).resolve().parents[2]

CASES = [
    ("key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "AWS key"),
    ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI", "AWS key"),
    ("token ghp_" + "A" * 36, "ghp_" + "A" * 36, "GitHub token"),
    ("glpat-abcdefghijklmnopqrstu", "glpat-abcdefghijklmnopqrstu", "GitLab token"),
    ("OPENAI key sk-proj-" + "x1" * 20, "sk-proj-" + "x1" * 20, "OpenAI key"),
    ("anthropic sk-ant-api03-" + "Zq" * 20, "sk-ant-api03-" + "Zq" * 20, "Anthropic key"),
    ("google AIza" + "B" * 35, "AIza" + "B" * 35, "Google API key"),
    ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij", "Slack token"),
    ("stripe sk_live_" + "a" * 24, "sk_live_" + "a" * 24, "Stripe key"),
    ("//registry.npmjs.org/:_authToken=npm_abcdefghijklmnop", "npm_abcdefghijklmnop", "npm token"),
    ("hf_" + "c" * 34, "hf_" + "c" * 34, "Hugging Face token"),
    ("redis://default:pa55-w0rd@cache:6379/0", "pa55-w0rd", "password in URL"),
    ("export API_TOKEN=abc123def456\n", "abc123def456", "secret in .env line"),
    ('DB_PASSWORD="correct horse"\nSECRET_KEY="0123456789abcdef"', "0123456789abcdef", "secret in .env line"),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "private key",
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
        "JSON web token",
    ),
]


@pytest.mark.parametrize(
    ("text", "secret", "kind"), CASES, ids=[case[2] + str(i) for i, case in enumerate(CASES)]
)
def test_each_kind_of_secret_is_replaced_by_its_label(text, secret, kind):
    found = Redaction()
    out = redact(text, found)
    assert secret not in out and f"[redacted: {kind}]" in out
    assert found.counts[kind] >= 1
    assert redact(out, Redaction()) == out  # redacting again changes nothing


@pytest.mark.parametrize("text", [case[0] for case in CASES])
def test_the_prefilter_changes_nothing_but_speed(text, monkeypatch):
    with_re2 = redact(text, Redaction())
    monkeypatch.setattr(redaction, "_prefilter", lambda: None)
    assert redact(text, Redaction()) == with_re2


def test_only_the_secret_goes_the_rest_of_the_line_stays():
    out = redact("postgresql://me:s3cret-pw@db.internal:5432/team?sslmode=require", Redaction())
    assert out == "postgresql://me:[redacted: password in URL]@db.internal:5432/team?sslmode=require"
    assert redact("export GITHUB_TOKEN=$TOKEN\nAPI_KEY=${KEY}\n", Redaction()).count("[redacted") == 0


def test_ordinary_code_is_left_alone():
    """No false positives on deskmate's own sources (Python, TypeScript, Lua: 300+ KB)."""
    sources = [
        path
        for pattern in (
            "server/deskmate/**/*.py",
            "clients/vscode/src/**/*.ts",
            "clients/neovim/lua/**/*.lua",
        )
        for path in sorted(REPO.glob(pattern))
        if path.name != "redaction.py"
    ]
    found = Redaction()
    for path in sources:
        text = path.read_text()
        assert redact(text, found) == text or pytest.fail(f"{path}: {found.counts}")
    assert not found


def test_the_question_and_the_context_text_are_redacted_and_the_context_copied():
    context = {"uri": "file:///p/.env", "text": "AWS_SECRET_TOKEN=abcdefgh12345678\n", "languageId": "dotenv"}
    question, new_context, found = redact_question("see AKIAIOSFODNN7EXAMPLE", context)
    assert question == "see [redacted: AWS key]"
    assert new_context["text"] == "AWS_SECRET_TOKEN=[redacted: secret in .env line]\n"
    assert context["text"] == "AWS_SECRET_TOKEN=abcdefgh12345678\n"  # the caller's dict is not changed
    assert found.kinds() == [{"kind": "AWS key", "count": 1}, {"kind": "secret in .env line", "count": 1}]
    assert "1 AWS key and 1 secret in .env line" in found.notice()
    unchanged = {"uri": "file:///p/a.py", "text": "x = 1\n"}
    assert redact_question("hi", unchanged)[1] is unchanged
