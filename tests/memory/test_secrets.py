"""No part of a password or secret key ever reaches a message, a log record or a repr.

Each store's URL is written with secrets full of the characters URLs give meaning to
(unencoded, percent-encoded, and in the query), then every error path we can reach is
driven: malformed URLs, bad ports and options, a closed port, refused credentials. Every
message, repr and log record is searched for the secret and for every 3-character piece of it.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from deskmate.memory import Message, Session, SessionStoreError
from deskmate.memory.urls import daemon_store, redact
from helpers import free_port, pieces

from . import store_redis, store_s3

# Unencoded, each of these cuts a URL short somewhere: '#' starts a fragment, '/' a path, '?' a
# query, '@' ends the login early, ':' the user name; the full-width forms fail NFKC checks.
# The last two parse, so they reach every later check (ports, options, the server itself).
SECRETS = [
    "p#ss/w?rd@x",
    "Zq#9x/Kw?7v@J",
    "Pw\uff03Fu\uff0fll@9",
    "Lo:ng?Se/cr#et@",
    "Lo:Qx%Zv;9Kp",
    "Qx7Vz9Kp2Wm",
]


def assert_hidden(secret: str, texts: list[str]) -> None:
    for text in texts:
        leaked = sorted(piece for piece in pieces(secret, size=3) | {secret} if piece in text)
        assert not leaked, f"{leaked} of the secret shown in: {text}"


async def drive(url: str, tmp_path) -> list[str]:
    """Every message, repr and log line opening ``url`` and using it produces."""
    texts = []
    try:
        backend = daemon_store(url, tmp_path / "data", notify=texts.append)
    except SessionStoreError as exc:
        return [str(exc), repr(exc)]
    texts.append(repr(backend))
    texts.append(getattr(backend, "name", ""))
    calls = (
        lambda: backend.list(),
        lambda: backend.load("s"),
        lambda: backend.append("s", [Message(role="user", content="q")]),
        lambda: backend.save(Session(id="s")),
        lambda: backend.delete("s"),
    )
    for call in calls:
        try:
            await call()
        except SessionStoreError as exc:
            texts += [str(exc), repr(exc), str(getattr(exc, "reason", ""))]
    await backend.close()
    return texts


def redis_urls(secret: str, port: int) -> list[str]:
    encoded = quote(secret, safe="")
    server = store_redis.server_url().split("://", 1)[1].split("/")[0]
    return [
        f"redis://user:{secret}@127.0.0.1:{port}/0",
        f"redis://:{secret}@127.0.0.1:{port}/0",
        f"rediss://user:{secret}@127.0.0.1:{port}/0?prefix=p",
        f"redis://user:{secret}@127.0.0.1:notaport/0",
        f"redis://user:{secret}@[::1/0",
        f"redis://user:{secret}@h/0?ttl=soon",
        f"redis://user:{secret}@h/zero",
        f"redis://user:{secret}@h/0?prefix=a*",
        f"redis://user:{secret}@h/0?nosuch=1",
        f"redis://h/0?password={secret}",
        f"redis://h/0?password={encoded}&socket_timeout=x",
        f"redis://user:{encoded}@127.0.0.1:{port}/0",
        f"redis://nobody:{encoded}@{server}/0",  # refused by the server
        f"redis://:{encoded}@{server}/0?prefix=t-secrets-{port}",  # AUTH with no password configured
        f"redis:/user:{secret}@h/0",
    ]


def postgres_urls(secret: str, port: int) -> list[str]:
    encoded = quote(secret, safe="")
    return [
        f"postgresql://user:{secret}@127.0.0.1:{port}/test",
        f"postgresql://:{secret}@127.0.0.1:{port}/test",
        f"postgresql://user:{secret}@127.0.0.1:port/test",
        f"postgresql://user:{secret}@[::1/test",
        f"postgresql://user:{secret}@h/test?schema=bad-name",
        f"postgresql://user:{secret}@h/test?nosuchoption=1",
        f"postgresql://h/test?password={secret}",
        f"postgresql://h/test?sslpassword={secret}&port=p",
        f"postgresql://user:{encoded}@127.0.0.1:{port}/test",
        f"postgresql://user:{encoded}@127.0.0.1:{port}/test?connect_timeout=soon",
        f"postgres:/user:{secret}@h/test",
    ]


def s3_urls(secret: str, port: int) -> list[str]:
    encoded = quote(secret, safe="")
    endpoint = store_s3.endpoint()
    return [
        f"s3://AKIAKEY:{secret}@deskmate-test/p?endpoint=http://127.0.0.1:{port}",
        f"s3://AKIAKEY:{secret}@deskmate-test/p",
        f"s3://AKIAKEY:{secret}@Bad_Bucket/p",
        f"s3://AKIAKEY:{secret}@deskmate-test/p?nosuch=1",
        f"s3://AKIAKEY:{secret}@[::1/p",
        f"s3://AKIAKEY:{encoded}@deskmate-test/p?endpoint=http://127.0.0.1:{port}",
        f"s3://AKIAKEY:{encoded}@no-such-deskmate-bucket/p?endpoint={endpoint}",
        f"s3://AKIAKEY:{encoded}@deskmate-test/p?endpoint=ftp://h",
        f"s3://AKIAKEY:{encoded}@deskmate-test/p?endpoint=http://u:{encoded}@127.0.0.1:{port}",
        f"s3:/AKIAKEY:{secret}@deskmate-test/p",
    ]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("store", ["redis", "postgres", "s3"])
async def test_no_piece_of_a_secret_is_ever_shown(store, secret, tmp_path, caplog):
    if store == "redis":
        store_redis.require_server()
    caplog.set_level(logging.DEBUG)
    port = free_port()
    urls = {"redis": redis_urls, "postgres": postgres_urls, "s3": s3_urls}[store](secret, port)
    texts = []
    for url in urls:
        texts += await drive(url, tmp_path)
        texts.append(redact(url))
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    assert_hidden(secret, texts)


@pytest.mark.parametrize("secret", SECRETS)
def test_redact_hides_every_piece_of_a_secret(secret):
    encoded = quote(secret, safe="")
    for url in (
        f"redis://user:{secret}@host:6379/0?prefix=p",
        f"redis://:{secret}@host",
        f"postgresql://user:{secret}@h1:5432,h2/db?sslmode=require",
        f"postgresql://h/db?password={secret}",
        f"postgresql://h/db?sslmode=require&password={secret}&application_name=x",
        f"postgresql://u:{secret}@h/db?password={secret}",
        f"s3://KEY:{secret}@bucket/prefix?endpoint=http://minio:9000",
        f"s3://KEY:{encoded}@bucket/prefix",
        f"redis:/user:{secret}@host",
        f"redis:user:{secret}@host",
    ):
        assert_hidden(secret, [redact(url)])


def test_redact_hides_a_login_holding_query_syntax():
    # '&' and '=' in a password written in the login (in a query they would split it in two).
    secret = "a&Kz=Qv7#z"
    for url in (f"redis://user:{secret}@host/0", f"postgresql://u:{secret}@h/db?password=x"):
        assert_hidden(secret, [redact(url)])
