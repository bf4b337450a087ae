"""A full disk costs no turn: the daemon answers, says plainly why the turn is not saved yet,
keeps it in memory and stores it once space returns (a real, small tmpfs filled to the brim)."""

from __future__ import annotations

import asyncio

from deskmate.memory import FileBackend
from helpers import Filler, tmpfs


async def wait_for_message(daemon, fragment: str) -> str:
    for _ in range(300):
        for message in daemon.client.messages:
            if fragment in message.message:
                return message.message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message with {fragment!r}: {[m.message for m in daemon.client.messages]}")


async def test_a_full_disk_keeps_the_turn_and_stores_it_when_space_returns(
    start_daemon, project, tmp_path, model_server
):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        data_dir = disk / "data"
        daemon = await start_daemon(folders=[project], settings={"dataDir": str(data_dir)})
        await daemon.ask("before the disk filled", sessionId="s")
        filler = Filler(disk)

        # Longer than the slack in the session file's last page, which a tmpfs would still take.
        question = "[[answer:kept safe]] while full " + "x" * 10_000
        result = await daemon.ask(question, sessionId="s")
        assert result["answer"] == "kept safe" and result["interrupted"] is False
        warning = await wait_for_message(daemon, "could not be saved")
        assert "is full" in warning and "kept in memory" in warning and "Errno" not in warning
        # Meanwhile the conversation reads whole, and the model sees it.
        session = await daemon.run("deskmate.getSession", {"sessionId": "s"})
        assert [m["content"] for m in session["messages"]][-2:] == [question, "kept safe"]
        status = await daemon.run("deskmate.status")
        assert status["unsavedMessages"] == 2
        listed = await daemon.run("deskmate.listSessions", {"all": True})
        assert {s["sessionId"]: s["messageCount"] for s in listed["sessions"]}["s"] == 4
        await daemon.ask("[[answer:third]] still full", sessionId="s")
        # On disk (here and below), not what the daemon reports: nothing of the unsaved turns may have
        # reached the file while it was full, and all of them must reach it once there is space.
        assert len(FileBackend(data_dir).path_of("s").read_text().splitlines()) == 3  # header + first turn

        filler.remove()
        await wait_for_message(daemon, "there is space again")
        stored = await FileBackend(data_dir).load("s")
        assert [m.content for m in stored.messages] == [
            "before the disk filled",
            session["messages"][1]["content"],
            question,
            "kept safe",
            "[[answer:third]] still full",
            "third",
        ]
        assert (await daemon.run("deskmate.status"))["unsavedMessages"] == 0
        await daemon.stop()
