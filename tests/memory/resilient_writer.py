"""A process that appends turns through a ResilientBackend and reports each one that returned.

Usage: python resilient_writer.py STORAGE_URL OUTBOX_DIR SESSION_ID COUNT
Prints "ok <i>" after each append returned: from then on the turn must never be lost.
"""

import asyncio
import sys
from pathlib import Path

from deskmate.memory import Message
from deskmate.memory.resilient import ResilientBackend
from deskmate.memory.urls import backend_for_url, redact


async def main(url: str, outbox_dir: str, session_id: str, count: int) -> None:
    backend = ResilientBackend(backend_for_url(url), Path(outbox_dir), name=redact(url), retry_initial=0.05)
    for i in range(count):
        await backend.append(session_id, [Message(role="user", content=f"q{i}", id=f"q{i}")])
        await backend.append(session_id, [Message(role="assistant", content=f"a{i}", id=f"a{i}")])
        print(f"ok {i}", flush=True)
    await asyncio.sleep(3600)  # wait to be killed, as a daemon would


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
