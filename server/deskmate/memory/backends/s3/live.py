"""Live sessions in S3: a store that cannot tell anyone of a change, so it is polled; and
answering leases as small objects written with conditional requests.

A watch reads the manifest of each followed session every POLL_SECONDS (one small GET each;
the manifest holds what a summary shows). A lease is ``<prefix>answering/<id>.json``,
``{"deskmate": "lease", "holder": ..., "expires": <epoch seconds>}``: created with
``If-None-Match: *``, renewed or taken over (when expired) with ``If-Match`` on the version
read, removed by its holder with ``If-Match``. Expiry is read against the reader's clock:
machines sharing a bucket should keep their clocks in step (NTP) to within the lease's length.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from ...models import SessionInfo
from ...watching import PollingWatch
from .client import Declined, S3Client

POLL_SECONDS = 0.5


class S3Watch(PollingWatch):
    mechanism = f"polling every {POLL_SECONDS:g} s"


def watch(read_info: Callable[[str], SessionInfo | None]) -> S3Watch:
    """A watch reading each followed session's manifest (``read_info``, blocking) every POLL_SECONDS."""

    async def read(session_id: str) -> SessionInfo | None:
        return await asyncio.to_thread(read_info, session_id)

    return S3Watch(read, POLL_SECONDS)


class S3Leases:
    def __init__(self, client: S3Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, session_id: str) -> str:
        return f"{self.prefix}answering/{session_id}.json"

    def _read(self, key: str) -> tuple[dict, str] | None:
        found = self.client.get(key)
        if found is None:
            return None
        body, etag = found
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.get("deskmate") != "lease":
                raise ValueError
            float(data["expires"])
        except (ValueError, KeyError, TypeError):
            data = {"holder": None, "expires": 0}  # not a lease deskmate wrote: as good as expired
        return data, etag

    def claim(self, session_id: str, holder: str, seconds: float) -> bool:
        key = self.key(session_id)
        body = json.dumps({"deskmate": "lease", "holder": holder, "expires": time.time() + seconds}).encode()
        found = self._read(key)
        try:
            if found is None:
                self.client.put(key, body, create=True)
                return True
            data, etag = found
            if data.get("holder") != holder and float(data["expires"]) > time.time():
                return False
            self.client.put(key, body, if_match=etag)
            return True
        except Declined:  # another process wrote it between our read and write
            return False

    def release(self, session_id: str, holder: str) -> None:
        key = self.key(session_id)
        found = self._read(key)
        if found is not None and found[0].get("holder") == holder:
            self.client.remove(key, if_match=found[1])
