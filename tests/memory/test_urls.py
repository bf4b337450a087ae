"""Storage URLs: the scheme picks the backend; secrets never reach a message."""

import pytest

from deskmate.memory import FileBackend, StorageError
from deskmate.memory.urls import backend_for_url, check_url, redact


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "postgresql://u:secret@db:5432/app?sslmode=require",
            "postgresql://u:***@db:5432/app?sslmode=require",
        ),
        ("redis://:secret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://u:secret@host:notaport/0", "redis://u:***@host:notaport/0"),
        ("s3://AKIA:secret@bucket/p?endpoint=http://x", "s3://AKIA:***@bucket/p?endpoint=http://x"),
        (
            "postgresql://db/app?password=secret&application_name=d",
            "postgresql://db/app?password=***&application_name=d",
        ),
        ("file:///home/me/deskmate", "file:///home/me/deskmate"),
    ],
)
def test_redact_hides_passwords_and_secret_parameters(url, shown):
    assert redact(url) == shown


def test_a_path_or_file_url_opens_a_file_backend(tmp_path):
    assert backend_for_url(str(tmp_path)).root == tmp_path
    with_space = tmp_path / "with space"
    assert backend_for_url(with_space.as_uri()).root == with_space
    assert isinstance(backend_for_url("~/x"), FileBackend)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("", "The storage URL is empty"),
        ("mongodb://h/db", "Unknown storage URL scheme 'mongodb'"),
        ("file://server/share", "must name a local directory"),
    ],
)
def test_bad_urls_are_named(url, problem):
    with pytest.raises(StorageError, match=problem):
        backend_for_url(url)


def test_check_url_accepts_every_documented_scheme():
    for url in ("file:///x", "postgresql://h/d", "postgres://h/d", "redis://h", "rediss://h", "s3://b/p"):
        assert check_url(f" {url} ") == url
