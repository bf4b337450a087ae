"""Reaching the real servers some backends' tests need, and what to do when one is missing.

On CI (``CI`` set) a missing server fails the test: those tests must never be
skipped silently there. On a laptop they skip with a message saying how to
enable them.
"""

from __future__ import annotations

import os
import socket

import pytest


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(available: bool, what: str, how_to_enable: str) -> None:
    """Skip (or, on CI, fail) the calling test unless ``available``."""
    if available:
        return
    message = f"{what} is not reachable; {how_to_enable}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run these tests, not skip them)", pytrace=False)
    pytest.skip(message)
