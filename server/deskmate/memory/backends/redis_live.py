"""Live sessions in Redis: changes through pub/sub, and answering leases as expiring keys.

Every write script (``redis.py``) ends with ``PUBLISH <prefix>:changes <id>``, in the same
atomic run as the write, so a subscriber hears of each write by any daemon. A watch subscribes
on a connection of its own and reads the summary of each followed session a message names.
Pub/sub keeps nothing for a subscriber that is away: when the connection breaks, the watch
reconnects and reads every followed session again.

A lease is the key ``<prefix>:answering:{<id>}`` holding the holder's name, with a PX expiry:
set only when it is missing or already the holder's (one script), deleted only by its holder.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..models import SessionInfo
from ..watching import SessionWatch

log = logging.getLogger(__name__)

RECONNECT_MAX = 10.0

# KEYS: the lease. ARGV: holder, milliseconds. 1: taken or renewed; 0: another holder's.
CLAIM = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the lease. ARGV: holder.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisWatch(SessionWatch):
    """Messages on ``<prefix>:changes``, each a session id."""

    mechanism = "pub/sub"

    def __init__(
        self,
        read: Callable[[str], Awaitable[SessionInfo | None]],
        subscriber: Callable[[], Any],
        channel: str,
    ) -> None:
        super().__init__(read)
        self._subscriber = subscriber
        self._channel = channel

    async def _nudges(self) -> AsyncIterator[set[str] | None]:
        delay = 0.5
        while not self._closed.is_set():
            pubsub = None
            try:
                pubsub = self._subscriber()
                await pubsub.subscribe(self._channel)
                delay = 0.5
                self.ready.set()
                yield None  # what changed before (or while) nothing listened
                while not self._closed.is_set():
                    # Wakes every second with nothing to say, so a close is seen.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        yield {data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)}
            except Exception as exc:
                log.info("Listening for session changes stopped (%s); reconnecting in %.0f s", exc, delay)
                if await self._sleep(delay):
                    return
                delay = min(delay * 2, RECONNECT_MAX)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # the connection is gone already
                        pass
