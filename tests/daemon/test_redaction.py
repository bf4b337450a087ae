"""redactSecrets through the real daemon: what is stored and what the model server receives are
both redacted, and the user is told once per ask with a notification (never a modal)."""

import json

from lsprotocol import types

from helpers import stored_messages

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
DB_PASSWORD = "hunter2-correct-horse"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAzvS7\nq9Xk2L0\n-----END RSA PRIVATE KEY-----"
ENV_SECRET = "s3cr3t-from-dotenv-0042"
SECRETS = [AWS_KEY, GITHUB_TOKEN, DB_PASSWORD, "MIIEowIBAAKCAQEAzvS7", ENV_SECRET]


def question_with_secrets() -> tuple[str, dict]:
    question = f"Why does boto reject {AWS_KEY}? I also tried {GITHUB_TOKEN}."
    context = {
        "uri": "file:///project/.env",
        "languageId": "dotenv",
        "text": f"DATABASE_URL=postgresql://app:{DB_PASSWORD}@db:5432/app\nSTRIPE_SECRET_KEY={ENV_SECRET}\n"
        f"DEBUG=true\n{PRIVATE_KEY}\n",
    }
    return question, context


async def test_secrets_are_redacted_in_the_store_and_in_the_request(
    start_daemon, project, model_server, data_dir
):
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    question, context = question_with_secrets()
    result = await daemon.ask(question, context=context, askId="r1")

    sent = json.dumps(model_server.requests)
    stored = await stored_messages(daemon, result["sessionId"])
    on_disk = b"".join(path.read_bytes() for path in (data_dir / "sessions").glob("*.jsonl")).decode()
    for secret in SECRETS:
        assert secret not in sent and secret not in json.dumps(stored) and secret not in on_disk
    assert (
        "[redacted: AWS key]" in stored[0]["content"] and "[redacted: GitHub token]" in stored[0]["content"]
    )
    text = stored[0]["context"]["text"]
    assert "postgresql://app:[redacted: password in URL]@db:5432/app" in text
    assert "STRIPE_SECRET_KEY=[redacted: secret in .env line]" in text and "DEBUG=true" in text
    assert "[redacted: private key]" in text
    user_turn = model_server.requests[-1]["messages"][-1]["content"]
    assert "[redacted: AWS key]" in user_turn and "[redacted: private key]" in user_turn
    kinds = {entry["kind"]: entry["count"] for entry in result["redacted"]}
    assert kinds == {
        "AWS key": 1,
        "GitHub token": 1,
        "password in URL": 1,
        "secret in .env line": 1,
        "private key": 1,
    }
    notices = [m for m in daemon.client.messages if "redacted" in m.message]
    assert len(notices) == 1 and notices[0].type == types.MessageType.Info
    assert "1 AWS key" in notices[0].message and "redactSecrets" in notices[0].message
    for secret in SECRETS:
        assert secret not in notices[0].message


async def test_a_question_without_secrets_is_untouched_and_nobody_is_told(
    start_daemon, project, model_server
):
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    text = "def connect(url):\n    password = os.environ['DB_PASSWORD']\n    return psycopg.connect(url)\n"
    result = await daemon.ask("What does this do?", context={"uri": "file:///p/db.py", "text": text})
    assert "redacted" not in result
    assert text in model_server.requests[-1]["messages"][-1]["content"]
    assert not [m for m in daemon.client.messages if "redacted" in m.message]


async def test_redaction_can_be_turned_off(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project], settings={"redactSecrets": False})
    model_server.clear_requests()
    result = await daemon.ask(f"is {AWS_KEY} valid?")
    stored = await stored_messages(daemon, result["sessionId"])
    assert AWS_KEY in stored[0]["content"] and AWS_KEY in json.dumps(model_server.requests)
    assert "redacted" not in result
