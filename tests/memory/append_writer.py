"""A separate process that appends turns to one session and reports each one that returned.

Usage: python append_writer.py STORAGE SESSION_ID TAG COUNT
STORAGE is a storage URL (or a directory for the FileBackend). Prints
"ok <tag>-<i>" after each durable append, so the parent knows what must survive.
"""

import asyncio
import sys

from deskmate.memory import Message
from deskmate.memory.urls import backend_for_url


async def main(storage: str, session_id: str, tag: str, count: int) -> None:
    backend = backend_for_url(storage)
    try:
        for i in range(count):
            turn = [
                Message(role="user", content=f"{tag}-{i} question " + "q" * (i % 50), id=f"{tag}-{i}-q"),
                Message(role="assistant", content=f"{tag}-{i} answer " + "a" * (i % 300), id=f"{tag}-{i}-a"),
            ]
            await backend.append(session_id, turn)
            sys.stdout.write(f"ok {tag}-{i}\n")
            sys.stdout.flush()
    finally:
        await backend.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
