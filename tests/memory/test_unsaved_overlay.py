"""The overlay that keeps turns in memory while autoSave is off: a conditional save checks the
history in memory, which is what callers read."""

import pytest

from deskmate.memory import FileBackend
from deskmate.memory.errors import SessionChanged
from deskmate.memory.unsaved import UnsavedOverlay
from helpers import turn


async def test_a_conditional_save_checks_the_copy_in_memory(tmp_path):
    overlay = UnsavedOverlay(FileBackend(tmp_path))
    await overlay.append("s", turn(0))
    session = await overlay.load("s")
    await overlay.append("s", turn(1))
    with pytest.raises(SessionChanged, match="had 2 messages and now holds 4"):
        await overlay.save(session, expected_messages=2)
    assert len((await overlay.load("s")).messages) == 4
    await overlay.save(session, expected_messages=4)  # the caller decides, having seen all four
    assert len((await overlay.load("s")).messages) == 2


async def test_a_conditional_save_of_a_session_that_is_gone_is_refused(tmp_path):
    overlay = UnsavedOverlay(FileBackend(tmp_path))
    await overlay.append("s", turn(0))
    session = await overlay.load("s")
    await overlay.delete("s")
    with pytest.raises(SessionChanged, match="no longer exists"):
        await overlay.save(session, expected_messages=2)
