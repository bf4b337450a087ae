"""FileBackend-specific guarantees: format, durability, crashes, other processes, permissions."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskmate.memory import FileBackend, Message, Session, default_data_dir
from helpers import descriptors_to, turn

WRITER = Path(__file__).with_name("append_writer.py")


@pytest.fixture
def backend(data_dir):
    """These tests are about files: a FileBackend only (the conformance suite runs every store)."""
    return FileBackend(data_dir)


def writer_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


async def test_file_is_json_lines_a_person_can_read(backend):
    await backend.append("readable", turn(0), title="Readable", workspace_uri="file:///proj")
    lines = backend.path_of("readable").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["deskmate"] == "session" and header["title"] == "Readable"
    first, second = json.loads(lines[1]), json.loads(lines[2])
    assert (first["role"], first["content"], first["n"], first["more"]) == ("user", "q0", 1, True)
    assert (second["role"], second["n"]) == ("assistant", 2) and "more" not in second


async def test_append_does_not_rewrite_the_file(backend):
    await backend.append("grow", turn(0))
    path = backend.path_of("grow")
    inode = path.stat().st_ino
    before = path.read_bytes()
    await backend.append("grow", turn(1))
    assert path.stat().st_ino == inode  # same file: appended in place, not replaced
    assert path.read_bytes().startswith(before)


async def test_save_replaces_atomically_and_leaves_no_temp_files(backend):
    await backend.save(Session(id="atomic", messages=turn(0)))
    inode = backend.path_of("atomic").stat().st_ino
    await backend.save(Session(id="atomic", messages=turn(1)))
    assert backend.path_of("atomic").stat().st_ino != inode
    assert [p.name for p in backend.directory.iterdir() if p.name.endswith(".tmp")] == []


async def test_torn_tail_is_ignored_then_repaired(backend):
    await backend.append("torn", turn(0))
    path = backend.path_of("torn")
    good = path.read_bytes()
    # A crash in the middle of a two-message append: one whole line marked "more", then half a line.
    half_turn = (
        json.dumps({"role": "user", "content": "lost", "n": 3, "more": True}).encode()
        + b"\n"
        + b'{"role": "assistant", "content": "cut sh'
    )
    path.write_bytes(good + half_turn)
    loaded = await backend.load("torn")
    assert [m.content for m in loaded.messages] == ["q0", "a0"]
    assert loaded.quarantined_to is None
    assert path.read_bytes() == good + half_turn  # a load never writes
    await backend.append("torn", turn(1))
    assert [m.content for m in (await backend.load("torn")).messages] == ["q0", "a0", "q1", "a1"]
    assert b"lost" not in path.read_bytes() and b"cut sh" not in path.read_bytes()


async def test_zero_filled_tail_after_power_cut_is_ignored(backend):
    await backend.append("zeros", turn(0))
    path = backend.path_of("zeros")
    with path.open("ab") as f:
        f.write(b"\0" * 4096)
    assert len((await backend.load("zeros")).messages) == 2
    await backend.append("zeros", turn(1))
    assert len((await backend.load("zeros")).messages) == 4


async def test_corrupted_file_is_moved_aside_not_overwritten(backend):
    await backend.append("broken", turn(0))
    path = backend.path_of("broken")
    damaged = path.read_bytes().replace(b'"q0"', b'"q0')  # breaks a complete line
    path.write_bytes(damaged)
    loaded = await backend.load("broken")
    assert loaded.messages == []
    assert loaded.quarantined_to is not None
    moved = Path(loaded.quarantined_to)
    assert moved.name.startswith("broken.jsonl.corrupt-")
    assert moved.read_bytes() == damaged  # the user's data is kept byte for byte
    assert not path.exists()
    await backend.append("broken", turn(1))
    assert [m.content for m in (await backend.load("broken")).messages] == ["q1", "a1"]
    assert moved.read_bytes() == damaged


async def test_not_json_at_all_is_moved_aside(backend):
    backend.directory.mkdir(parents=True)
    path = backend.path_of("garbage")
    path.write_text("this is not json\n")
    loaded = await backend.load("garbage")
    assert loaded.quarantined_to and Path(loaded.quarantined_to).read_text() == "this is not json\n"


async def test_list_shows_damaged_file_without_moving_it(backend):
    backend.directory.mkdir(parents=True)
    backend.path_of("bad").write_text("{nope\n")
    infos = await backend.list()
    assert [(i.id, i.title) for i in infos] == [("bad", "(damaged session file)")]
    assert backend.path_of("bad").exists()


async def test_hand_edited_file_with_blank_lines_and_crlf_still_loads(backend):
    await backend.append("edited", turn(0))
    path = backend.path_of("edited")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    assert [m.content for m in (await backend.load("edited")).messages] == ["q0", "a0"]


async def test_list_reads_only_head_and_tail(backend, monkeypatch):
    for i in range(3):
        await backend.append(f"s{i}", turn(i))
    import deskmate.memory.backends.file.store as fb

    def fail(*args, **kwargs):
        raise AssertionError("list() must not parse whole histories")

    monkeypatch.setattr(fb, "parse_session", fail)
    assert len(await backend.list()) == 3


async def test_list_of_a_long_history_finds_count_in_the_tail(backend):
    await backend.save(
        Session(id="long", messages=[Message(role="user", content="x" * 1000) for _ in range(500)])
    )
    await backend.append("long", turn(0))
    assert (await backend.list())[0].message_count == 502


async def test_permissions(backend):
    await backend.append("private", turn(0))
    assert stat.S_IMODE(backend.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(backend.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(backend.path_of("private").stat().st_mode) == 0o600
    await backend.save(Session(id="private", messages=turn(1)))
    assert stat.S_IMODE(backend.path_of("private").stat().st_mode) == 0o600


def test_data_dir_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DESKMATE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("DESKMATE_DATA_DIR")
    assert default_data_dir().name == "deskmate"


def test_two_processes_appending_to_one_session(data_dir):
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(data_dir), "shared", tag, "150"],
            stdout=subprocess.PIPE,
            text=True,
            env=writer_env(),
        )
        for tag in ("A", "B")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert out.count("ok ") == 150
    import asyncio

    loaded = asyncio.run(FileBackend(data_dir).load("shared"))
    ids = [m.id for m in loaded.messages]
    assert len(ids) == 600
    for tag in ("A", "B"):
        # each turn stays whole (question right before its answer) and in order
        mine = [i for i in ids if i.startswith(f"{tag}-")]
        assert mine == [f"{tag}-{i}-{part}" for i in range(150) for part in ("q", "a")]
    for k in range(0, 600, 2):
        assert ids[k].endswith("-q") and ids[k + 1] == ids[k][:-1] + "a"
    counts = [
        json.loads(line)["n"] for line in FileBackend(data_dir).path_of("shared").read_text().splitlines()[1:]
    ]
    assert counts == list(range(1, 601))


def test_sigkill_at_random_moments_never_tears_or_loses(data_dir):
    """Kill a writer at random instants, again and again; every acknowledged turn must survive."""
    import asyncio

    rng = random.Random(1234)
    acknowledged: list[str] = []
    backend = FileBackend(data_dir)
    for iteration in range(25):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(data_dir), "crashy", f"i{iteration}", "100000"],
            stdout=subprocess.PIPE,
            text=True,
            env=writer_env(),
        )
        first = proc.stdout.readline()  # wait until it is writing
        assert first.startswith("ok ")
        acknowledged.append(first.split()[1])
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        acknowledged += [line.split()[1] for line in rest.splitlines() if line.startswith("ok ")]
        loaded = asyncio.run(backend.load("crashy"))
        assert loaded.quarantined_to is None, f"iteration {iteration}: file was judged corrupt"
        ids = [m.id for m in loaded.messages]
        # never a half turn: questions and answers come in pairs
        assert len(ids) % 2 == 0
        for k in range(0, len(ids), 2):
            assert ids[k].endswith("-q") and ids[k + 1] == ids[k][:-1] + "a"
        present = {i[:-2] for i in ids}
        missing = [tag for tag in acknowledged if tag not in present]
        assert not missing, f"iteration {iteration}: acknowledged turns lost: {missing[:5]}"
    assert len(acknowledged) > 25


async def test_a_lock_held_too_long_is_reported_clearly(data_dir):
    from deskmate.memory import StorageError
    from deskmate.memory.locking import exclusive_lock

    backend = FileBackend(data_dir, lock_timeout=0.2)
    await backend.append("held", turn(0))
    with exclusive_lock(str(backend.directory / ".locks" / "held.lock"), timeout=1):
        with pytest.raises(StorageError, match="locked by another process for more than 0 s"):
            await backend.append("held", turn(1))
    await backend.append("held", turn(1))
    assert len((await backend.load("held")).messages) == 4


async def test_reload_reads_only_what_another_writer_appended(data_dir, monkeypatch):
    reader, writer = FileBackend(data_dir), FileBackend(data_dir)
    await writer.append("shared", turn(0))
    assert len((await reader.load("shared")).messages) == 2
    import deskmate.memory.backends.file.store as fb

    monkeypatch.setattr(fb, "parse_session", lambda *a: (_ for _ in ()).throw(AssertionError("full parse")))
    await writer.append("shared", turn(1))
    loaded = await reader.load("shared")
    assert [m.content for m in loaded.messages] == ["q0", "a0", "q1", "a1"]
    assert loaded.updated_at == loaded.messages[-1].timestamp
    assert len((await reader.load("shared")).messages) == 4  # unchanged file: straight from memory


async def test_reload_after_a_replace_or_an_in_place_edit_reads_everything(data_dir):
    reader, writer = FileBackend(data_dir), FileBackend(data_dir)
    await writer.append("edited", turn(0))
    await reader.load("edited")
    await writer.save(Session(id="edited", messages=turn(5)))
    assert [m.content for m in (await reader.load("edited")).messages] == ["q5", "a5"]
    path = writer.path_of("edited")
    inode = path.stat().st_ino
    with path.open("r+b") as f:  # an editor that rewrites in place and makes the file longer
        text = f.read().replace(b'"a5"', b'"a5, edited by hand"')
        f.seek(0)
        f.write(text)
    assert path.stat().st_ino == inode
    assert [m.content for m in (await reader.load("edited")).messages] == ["q5", "a5, edited by hand"]


async def test_reload_ignores_a_torn_tail_written_after_it_was_cached(backend):
    await backend.append("tail", turn(0))
    await backend.load("tail")
    with backend.path_of("tail").open("ab") as f:
        f.write(b'{"role": "user", "content": "half')
    assert len((await backend.load("tail")).messages) == 2
    await backend.append("tail", turn(1))
    assert [m.content for m in (await backend.load("tail")).messages] == ["q0", "a0", "q1", "a1"]


async def test_callers_changing_a_loaded_session_do_not_change_the_next_load(backend):
    await backend.append("mine", turn(0))
    first = await backend.load("mine")
    first.messages.append(Message(role="user", content="only in memory"))
    first.title = "changed"
    again = await backend.load("mine")
    assert len(again.messages) == 2 and again.title == ""


async def test_non_utf8_file_is_moved_aside(backend):
    backend.directory.mkdir(parents=True)
    backend.path_of("latin").write_bytes(b'{"deskmate": "session"}\n{"role": "user", "content": "caf\xe9"}\n')
    loaded = await backend.load("latin")
    assert loaded.quarantined_to and loaded.messages == []


async def test_lone_surrogates_are_stored_and_returned_as_replacement_characters(backend):
    question = Message(
        role="user", content="half \ud800 a pair", context={"uri": "file:///p", "text": "x\udfff"}
    )
    await backend.append("surrogates", [question], title="title \udc00")
    await backend.save(
        Session(id="saved", title="\ud83d", messages=[Message(role="assistant", content="\ud800\udc00")])
    )
    backend.path_of("surrogates").read_bytes().decode("utf-8")  # the file is UTF-8 text
    fresh = FileBackend(backend.root)  # reads the file, not what the writer remembers
    loaded = await fresh.load("surrogates")
    assert loaded.messages[0].content == "half \ufffd a pair"
    assert loaded.messages[0].context["text"] == "x\ufffd"
    assert loaded.title == "title \ufffd"
    saved = await fresh.load("saved")
    assert (saved.title, saved.messages[0].content) == ("\ufffd", "\ufffd\ufffd")
    assert {info.title for info in await fresh.list()} == {"title \ufffd", "\ufffd"}


# An append keeps the session file open beside its lock for the next one: these show it
# never writes to a file its name no longer leads to, and never keeps a removed one open.
needs_proc_fd = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")


@needs_proc_fd
async def test_an_append_after_another_writer_replaced_the_file_goes_to_the_new_file(data_dir):
    ours, theirs = FileBackend(data_dir), FileBackend(data_dir)
    await ours.append("shared", turn(0))  # makes the file
    await ours.append("shared", turn(0))  # appends, and keeps it open
    path = ours.path_of("shared")
    assert descriptors_to(path) == [str(path)]
    await theirs.save(Session(id="shared", messages=turn(5)))
    await ours.append("shared", turn(1))
    assert [m.content for m in (await FileBackend(data_dir).load("shared")).messages] == [
        "q5",
        "a5",
        "q1",
        "a1",
    ]
    assert descriptors_to(path) == [str(path)]  # the replaced file was let go


@needs_proc_fd
async def test_an_append_after_another_writer_deleted_the_session_starts_it_again(data_dir):
    ours, theirs = FileBackend(data_dir), FileBackend(data_dir)
    for n in range(2):
        await ours.append("gone", turn(n))
    assert await theirs.delete("gone")
    await ours.append("gone", turn(2))
    await ours.append("gone", turn(3))
    assert [m.content for m in (await theirs.load("gone")).messages] == ["q2", "a2", "q3", "a3"]
    assert descriptors_to(ours.path_of("gone")) == [
        str(ours.path_of("gone"))
    ]  # the new file, not the deleted one


@needs_proc_fd
async def test_deleting_or_replacing_closes_the_file_an_append_kept(backend):
    for n in range(2):
        await backend.append("kept", turn(n))
    path = backend.path_of("kept")
    assert descriptors_to(path) == [str(path)]
    await backend.save(Session(id="kept", messages=turn(1)))
    assert descriptors_to(path) == []  # the old inode is not held open (its space is freed)
    await backend.append("kept", turn(2))
    assert await backend.delete("kept")
    assert descriptors_to(path) == []


@needs_proc_fd
async def test_a_damaged_file_an_append_kept_open_is_moved_aside_and_let_go(backend):
    for n in range(2):
        await backend.append("broken", turn(n))
    path = backend.path_of("broken")
    with path.open("ab") as file:  # damaged in place (same inode): a last line that is not a record
        file.write(b"not a record\n")
    await backend.append("broken", turn(2))
    (moved,) = path.parent.glob("broken.jsonl.corrupt-*")
    assert [m.content for m in (await backend.load("broken")).messages] == ["q2", "a2"]
    assert descriptors_to(moved) == []  # not kept open under its new name


@needs_proc_fd
async def test_close_lets_go_of_every_kept_file(backend):
    for n in range(3):
        await backend.append(f"s{n}", turn(n))
    await backend.close()
    assert all(descriptors_to(backend.path_of(f"s{n}")) == [] for n in range(3))
    await backend.append("s0", turn(9))  # still usable: opened again
    assert [m.content for m in (await backend.load("s0")).messages] == ["q0", "a0", "q9", "a9"]


async def test_an_append_to_the_file_it_kept_hands_only_the_write_to_a_thread(data_dir, monkeypatch):
    backend = FileBackend(data_dir)
    for n in range(2):  # makes the file, then appends and keeps it open
        await backend.append("hot", turn(n))

    def whole_append_in_a_thread(*args):
        raise AssertionError("took the worker's whole path")

    monkeypatch.setattr(backend, "_append", whole_append_in_a_thread)
    await backend.append("hot", turn(2))
    assert [m.content for m in (await backend.load("hot")).messages][-2:] == ["q2", "a2"]


async def test_a_cancelled_append_that_was_handed_over_is_written_and_lets_go_of_the_lock(data_dir):
    import asyncio

    backend = FileBackend(data_dir, lock_timeout=2)
    for n in range(2):
        await backend.append("cancel", turn(n))
    task = asyncio.create_task(backend.append("cancel", turn(2)))
    await asyncio.sleep(0)  # the lock is taken and the write handed to a worker thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await backend.append("cancel", turn(3))  # a lock left held would time out here
    contents = [m.content for m in (await FileBackend(data_dir).load("cancel")).messages]
    assert contents == ["q0", "a0", "q1", "a1", "q2", "a2", "q3", "a3"]
