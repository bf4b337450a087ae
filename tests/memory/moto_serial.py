"""moto's S3 server, handling one request at a time: ``python moto_serial.py HOST PORT``.

S3 makes a conditional write (``If-Match``, ``If-None-Match: *``) atomic, and the S3Backend's
appends, manifest swaps and leases rely on it. moto checks the condition and then writes, on
a thread per request, so two racing writers could both pass the check and one write be lost
(a conformance run saw 238 of 240 messages after three writer processes). Each request runs
whole under one lock here, as S3 keeps its promise; connections are still served side by side.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def one_at_a_time(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """``app`` with each request (its response body included) run under one lock."""
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            body = app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    return serialized


def main(host: str, port: int) -> None:
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto.server sets it: moto builds URLs with it
    run_simple(
        host,
        port,
        one_at_a_time(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
