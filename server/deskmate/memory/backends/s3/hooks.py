"""Named points in the S3 backend's work where a test acts: a crash, or a racing writer, exactly there.

The backend calls ``Hooks.fire`` at each point; with no action set it does nothing. An action
runs in the thread doing the request, and what it raises comes out of the operation, as a
writer killed at that point would leave things.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

AFTER_SEGMENT_PUT = "after segment put"  # an append's segment is stored, not yet counted
BEFORE_MANIFEST_SWAP = "before manifest swap"  # a manifest is about to replace the one it came from
POINTS = (AFTER_SEGMENT_PUT, BEFORE_MANIFEST_SWAP)

Action = Callable[[str], None]  # called with the session id


class Hooks:
    """The actions set for each point; pass one to ``S3Backend(hooks=...)``."""

    def __init__(self) -> None:
        self._actions: dict[str, list[tuple[Action, bool]]] = {}
        self._lock = threading.Lock()

    def on(self, point: str, action: Action, *, once: bool = False) -> None:
        """Run ``action(session_id)`` each time the backend reaches ``point`` (only the next time, if ``once``)."""
        if point not in POINTS:
            raise ValueError(f"{point!r} is not a hook point; the points are {', '.join(POINTS)}")
        with self._lock:
            self._actions.setdefault(point, []).append((action, once))

    def once(self, point: str, action: Action) -> None:
        """Run ``action(session_id)`` the next time the backend reaches ``point``."""
        self.on(point, action, once=True)

    def fire(self, point: str, session_id: str) -> None:
        """Run the actions set for ``point``; called by the backend."""
        with self._lock:
            actions = self._actions.get(point)
            if not actions:
                return
            self._actions[point] = [(action, once) for action, once in actions if not once]
        for action, _ in actions:  # outside the lock: an action may drive another backend
            action(session_id)
