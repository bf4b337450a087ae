"""The S3Backend, in the conformance suite: one moto server for the whole run, one prefix per test.

moto is a test dependency, so these tests never skip. The server (moto_serial.py: moto handling
one request at a time, so conditional writes are atomic as on S3) starts on first use on a free
127.0.0.1 port and stops when pytest exits; the credentials are dummies moto accepts, written
into the URL so that the writer subprocesses need nothing else.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from memory.services import port_open

BUCKET = "deskmate-test"
KEY_ID = "testing"
SECRET = "moto-dummy-secret"
REGION = "us-east-1"

# moto with one request at a time, so conditional writes are atomic as on S3 (its docstring).
SERIAL_SERVER = Path(__file__).with_name("moto_serial.py")

_server: subprocess.Popen[bytes] | None = None
_endpoint = ""


def endpoint() -> str:
    """The shared moto server's URL, starting it (and creating the bucket) on first use."""
    global _server, _endpoint
    if _server is None:
        _server, _endpoint = start_server()
        client().create_bucket(Bucket=BUCKET)
    return _endpoint


def start_server(**environment: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a moto server on a free port; stopped when pytest exits. Returns it and its URL."""
    with socket.socket() as probe:  # a port nobody uses right now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(SERIAL_SERVER), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **environment},
    )
    atexit.register(_stop, server)
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port, timeout=0.2):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the moto server on port {port} did not start (exit code {server.poll()})")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def client() -> Any:
    """A plain boto3 client on the moto server, for tests to look at the objects."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint(),
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )


def url_for(namespace: str, tmp_path: Path | None = None) -> str:
    return f"s3://{KEY_ID}:{SECRET}@{BUCKET}/{namespace}?endpoint={endpoint()}&region={REGION}"


def keys(namespace: str) -> list[str]:
    """Every key under the namespace, in order."""
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{namespace}/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def cleanup(namespace: str) -> None:
    """Delete every object the test stored under its namespace."""
    s3 = client()
    for key in keys(namespace):
        s3.delete_object(Bucket=BUCKET, Key=key)


def stored_bytes(namespace: str, tmp_path: Path | None = None) -> bytes:
    """Every object under the namespace: its key and its body."""
    s3 = client()
    return b"\n".join(
        key.encode() + b"\n" + s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys(namespace)
    )
