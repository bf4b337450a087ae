"""A separate process that takes a session's answering lease and holds it until killed.

Usage: python lease_holder.py STORAGE SESSION_ID HOLDER SECONDS
Prints "held" once the lease is its own, then renews it every SECONDS / 3 as an answering
daemon does, until the parent kills it (with SIGKILL: no chance to release anything).
"""

import asyncio
import sys

from deskmate.memory.urls import backend_for_url


async def main(storage: str, session_id: str, holder: str, seconds: float) -> None:
    backend = backend_for_url(storage)
    if not await backend.claim_answer(session_id, holder, seconds):
        sys.stdout.write("refused\n")
        sys.stdout.flush()
        return
    sys.stdout.write("held\n")
    sys.stdout.flush()
    while True:
        await asyncio.sleep(seconds / 3)
        await backend.claim_answer(session_id, holder, seconds)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
