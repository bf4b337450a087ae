#!/usr/bin/env python3
"""Session-store benchmark: deskmate's FileBackend against two peers, in one run.

Measures, for histories of 10, 100, 1,000 and 10,000 messages:

- the time to append one turn (a user and an assistant message) durably, over
  ``--turns`` appends (median and p95, ms per turn);
- the time to load the whole history (median of ``--loads`` loads, ms);

for deskmate's ``FileBackend``, LangChain's ``FileChatMessageHistory``
(langchain-community) and the OpenAI Agents SDK's ``SQLiteSession``
(openai-agents), beside the floor of a durable append: a bare ``os.write`` +
``os.fdatasync`` of the bytes a ``FileBackend`` append writes. Then it times ``FileBackend.list()`` over 1,000 sessions against
loading those 1,000 sessions. It prints plain-text tables; it is not a test and
asserts nothing, though it says which of the issue's targets the run met.

Run it through ``bash benchmarks/run_store_benchmark.sh``, which installs the
peers into ``benchmarks/.venv`` only. Without the peers installed the script
still runs and measures deskmate alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from deskmate.memory import FileBackend, Message, Session
from deskmate.memory.backends.file import store as file_store

SIZES = (10, 100, 1000, 10000)
WARMUP_TURNS = 2

# Representative message sizes: a question of a few lines and an answer of a few paragraphs.
_QUESTION = (
    "Why does the build fail after I renamed the module? Here is the traceback I get "
    "when I run the tests: ImportError: cannot import name 'load_config' from 'app.settings'. "
)
_ANSWER = (
    "The rename left an old import behind. `app/cli.py` still imports `load_config` from "
    "`app.settings`, but the function now lives in `app.config`. Change the import to "
    "`from app.config import load_config`, then search the tree for other uses:\n\n"
    "```sh\ngrep -rn 'app.settings' --include='*.py' .\n```\n\n"
    "If other packages import the old name, keep a shim in `app/settings.py` that re-exports "
    "it with a DeprecationWarning until they are updated. Your tests pass again once every "
    "import points at the new module; the traceback names the first one Python reached. "
)


def question(i: int) -> str:
    return f"[{i}] {_QUESTION * 2}"


def answer(i: int) -> str:
    return f"[{i}] {_ANSWER * 3}"


def history(n: int) -> list[tuple[str, str]]:
    """``n`` (role, content) pairs alternating user and assistant."""
    out = []
    for i in range(n):
        out.append(("user", question(i)) if i % 2 == 0 else ("assistant", answer(i)))
    return out


# -- the three stores, behind one small interface -----------------------------------


class Store:
    """One store holding one session in its own directory."""

    name = ""
    durability = ""
    shares_directory_of: type[Store] | None = None  # pre-filled in that store's directory
    loads = True  # in the load table

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def before_append(self, user: str, assistant: str) -> None:
        """Untimed preparation of the next append_turn (nothing, for a real store)."""

    async def append_turn(self, user: str, assistant: str) -> None:
        raise NotImplementedError

    async def load(self) -> int:
        """Load the whole history; return how many messages it had."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class DeskmateStore(Store):
    name = "deskmate FileBackend"
    durability = "one write + fdatasync per append, under a per-session flock"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.backend = FileBackend(directory)
        self.session_id = "bench"

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        session = Session(
            id=self.session_id,
            title="benchmark",
            messages=[Message(role=role, content=content) for role, content in messages],  # type: ignore[arg-type]
        )
        await self.backend.save(session)

    def before_append(self, user: str, assistant: str) -> None:
        # The daemon makes its messages when the question comes and the answer ends: not the store's work.
        self.turn = [Message(role="user", content=user), Message(role="assistant", content=assistant)]

    async def append_turn(self, user: str, assistant: str) -> None:
        await self.backend.append(self.session_id, self.turn)

    async def load(self) -> int:
        # Cold: a new backend has nothing cached, like the first load in a new process.
        session = await FileBackend(self.directory).load(self.session_id)
        assert session is not None and session.quarantined_to is None
        return len(session.messages)


class DeskmateDaemonStore(DeskmateStore):
    """The same files, loaded again by the backend that appended: what a running daemon does before each answer."""

    name = "deskmate FileBackend, reload in a running daemon"

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        await super().prefill(messages)
        await self.backend.load(self.session_id)  # the daemon loaded it before its last answer

    async def load(self) -> int:
        session = await self.backend.load(self.session_id)
        assert session is not None and session.quarantined_to is None
        return len(session.messages)


class DurableFloorStore(Store):
    """The least a durable append can cost: ``os.write`` + ``os.fdatasync`` of the very bytes
    a FileBackend append writes, to a file opened once with O_APPEND in the FileBackend's own
    ``sessions/`` directory (same filesystem, same size of file). No lock, no open per append,
    no encoding in the timed part; the write runs in a worker thread, as every store's does."""

    name = "bare os.write + os.fdatasync (the floor)"
    durability = "one os.write + os.fdatasync of the same bytes, fd opened once with O_APPEND"
    shares_directory_of = DeskmateStore
    loads = False

    def __init__(self, directory: Path) -> None:
        self.path = directory / "sessions" / "floor.jsonl"
        self.count = 0
        self.fd = -1

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        body = [Message(role=role, content=content) for role, content in messages]  # type: ignore[arg-type]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"{}\n" + file_store._message_lines(body, 0))
        self.count = len(body)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def before_append(self, user: str, assistant: str) -> None:
        turn = [Message(role="user", content=user), Message(role="assistant", content=assistant)]
        self.data = file_store._message_lines(turn, self.count)  # what FileBackend.append writes

    async def append_turn(self, user: str, assistant: str) -> None:
        await asyncio.to_thread(self._write, self.data)
        self.count += 2

    def _write(self, data: bytes) -> None:
        os.write(self.fd, data)
        os.fdatasync(self.fd)

    async def load(self) -> int:
        return self.count

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


class LangChainStore(Store):
    name = "LangChain FileChatMessageHistory"
    durability = "rewrites the whole JSON file once per message (Path.write_text), no fsync"

    def __init__(self, directory: Path) -> None:
        from langchain_community.chat_message_histories import FileChatMessageHistory

        self.history = FileChatMessageHistory(str(directory / "history.json"))

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        # FileChatMessageHistory has no bulk add: add_messages calls add_message per
        # message, and each re-reads and rewrites the file (quadratic). Write the very
        # bytes it would have written instead.
        from langchain_core.messages import AIMessage, HumanMessage, messages_to_dict

        objects = [HumanMessage(content=c) if r == "user" else AIMessage(content=c) for r, c in messages]
        self.history.file_path.write_text(
            json.dumps(messages_to_dict(objects), ensure_ascii=self.history.ensure_ascii),
            encoding=self.history.encoding,
        )

    async def append_turn(self, user: str, assistant: str) -> None:
        from langchain_core.messages import AIMessage, HumanMessage

        await self.history.aadd_messages([HumanMessage(content=user), AIMessage(content=assistant)])

    async def load(self) -> int:
        return len(await self.history.aget_messages())


class AgentsSQLiteStore(Store):
    name = "Agents SDK SQLiteSession"
    durability = ""  # filled in from the connection's pragmas

    def __init__(self, directory: Path) -> None:
        from agents import SQLiteSession

        self.db_path = directory / "sessions.db"
        self.session = SQLiteSession("bench", str(self.db_path))
        self.durability = sqlite_durability(self.session, self.db_path)

    async def prefill(self, messages: list[tuple[str, str]]) -> None:
        await self.session.add_items([{"role": r, "content": c} for r, c in messages])  # type: ignore[misc]

    async def append_turn(self, user: str, assistant: str) -> None:
        await self.session.add_items(
            [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]  # type: ignore[list-item]
        )

    async def load(self) -> int:
        return len(await self.session.get_items())

    def close(self) -> None:
        self.session.close()


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sqlite_durability(session: Any, db_path: Path) -> str:
    """What a commit of this SQLiteSession does, read from a connection it configured."""
    try:
        with session._locked_connection() as conn:  # the session's own connection settings
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    except Exception:  # private API changed: ask a fresh connection (same defaults)
        with sqlite3.connect(db_path) as conn:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    level = _SYNCHRONOUS.get(sync, str(sync))
    if journal == "wal" and sync >= 2:
        effect = "the WAL is fsynced at every commit"
    elif journal == "wal" and sync == 1:
        effect = "WAL not fsynced per commit (only at checkpoints): not durable on power loss"
    elif sync == 0:
        effect = "no fsync at all"
    else:
        effect = "journal and database fsynced at every commit"
    return f"one transaction per add_items; journal_mode={journal}, synchronous={level}: {effect}"


def available_stores() -> tuple[list[type[Store]], list[str]]:
    stores: list[type[Store]] = [DeskmateStore, DeskmateDaemonStore]
    if hasattr(os, "fdatasync"):  # not on macOS or Windows
        stores.append(DurableFloorStore)
    missing = []
    try:
        with warnings.catch_warnings():  # langchain-community warns that it is being sunset
            warnings.simplefilter("ignore", DeprecationWarning)
            import langchain_community.chat_message_histories  # noqa: F401

        stores.append(LangChainStore)
    except ImportError:
        missing.append("langchain-community")
    try:
        import agents  # noqa: F401

        stores.append(AgentsSQLiteStore)
    except ImportError:
        missing.append("openai-agents")
    return stores, missing


# -- measuring ------------------------------------------------------------------------


def ms(ns: int) -> float:
    return ns / 1e6


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))
    return ordered[index]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter_ns()
    result = await call()
    return ms(time.perf_counter_ns() - start), result


async def measure_all(
    stores: list[type[Store]], sizes: list[int], base: Path, turns: int, loads: int, seed: int = 0
) -> dict[tuple[str, int], dict[str, Any]]:
    """Time every (store, size) pair, interleaved.

    All pairs are set up first; then each round times one append turn (later: one
    load) of every pair, in a shuffled order. Whatever else the machine is doing
    then falls on every store and size alike, so the comparisons hold within the run.
    """
    shuffler = random.Random(seed)
    pairs: list[tuple[Store, int]] = []
    try:
        for size in sizes:
            for store_cls in stores:
                owner = store_cls.shares_directory_of or store_cls
                directory = base / f"{owner.__name__}-{size}"
                directory.mkdir(exist_ok=owner is not store_cls)
                store = store_cls(directory)
                pairs.append((store, size))
                await store.prefill(history(size))
        appended = {id(store): 0 for store, _ in pairs}
        append_ms: dict[int, list[float]] = {id(store): [] for store, _ in pairs}
        gc.collect()
        for round_ in range(WARMUP_TURNS + turns):
            order = pairs[:]
            shuffler.shuffle(order)
            for store, size in order:
                i = size + appended[id(store)]
                store.before_append(question(i), answer(i + 1))
                elapsed, _ = await timed(lambda s=store, i=i: s.append_turn(question(i), answer(i + 1)))
                appended[id(store)] += 2
                if round_ >= WARMUP_TURNS:
                    append_ms[id(store)].append(elapsed)
        # The benchmark's own heap (every store's prefilled history, the daemon store's parsed
        # copy) is not what a load in a new process has to scan: keep it out of the collector,
        # as it is for every store alike.
        gc.collect()
        gc.freeze()
        load_ms: dict[int, list[float]] = {id(store): [] for store, _ in pairs}
        for _ in range(loads):
            order = [pair for pair in pairs if pair[0].loads]
            shuffler.shuffle(order)
            for store, size in order:
                elapsed, count = await timed(store.load)
                expected = size + appended[id(store)]
                if count != expected:
                    raise RuntimeError(f"{store.name} loaded {count} messages, expected {expected}")
                load_ms[id(store)].append(elapsed)
        return {
            (store.name, size): {
                "append_median": statistics.median(append_ms[id(store)]),
                "append_samples": append_ms[id(store)],
                "append_p95": p95(append_ms[id(store)]),
                "load_median": statistics.median(load_ms[id(store)]) if store.loads else None,
                "durability": store.durability,
            }
            for store, size in pairs
        }
    finally:
        for store, _ in pairs:
            store.close()


async def measure_listing(directory: Path, sessions: int, messages: int, repeats: int) -> dict[str, float]:
    backend = FileBackend(directory)
    for s in range(sessions):
        session = Session(
            id=f"session-{s:05d}",
            title=f"Session {s}",
            workspace_uri=f"file:///home/user/project-{s % 25}",
            messages=[Message(role=r, content=c) for r, c in history(messages)],  # type: ignore[arg-type]
        )
        await backend.save(session)
    gc.collect()
    list_ms, load_all_ms = [], []
    for _ in range(repeats):
        elapsed, infos = await timed(backend.list)
        assert len(infos) == sessions and all(info.message_count == messages for info in infos)
        list_ms.append(elapsed)

        async def load_all(infos: list[Any] = infos) -> int:
            total = 0
            for info in infos:
                loaded = await FileBackend(directory).load(info.id)  # cold, as in a new process
                assert loaded is not None
                total += len(loaded.messages)
            return total

        elapsed, total = await timed(load_all)
        assert total == sessions * messages
        load_all_ms.append(elapsed)
    return {"list": statistics.median(list_ms), "load_all": statistics.median(load_all_ms)}


# -- machine facts ----------------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """'ext4 (/dev/vda on /)' for the mount holding ``path``, from /proc/self/mounts."""
    target = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                device, mount_point, fstype = fields[0], fields[1].replace("\\040", " "), fields[2]
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and (best is None or len(mount_point) >= len(best[1])):
                    best = (device, mount_point, fstype)
    except OSError:
        return "unknown filesystem"
    if best is None:
        return "unknown filesystem"
    return f"{best[2]} ({best[0]} on {best[1]})"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"
    except OSError:
        return "unknown"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


# -- output -------------------------------------------------------------------------------


def pooled_median(results: dict[tuple[str, int], dict[str, Any]], name: str, sizes: list[int]) -> float:
    """The median append of ``name`` over every size's samples: an append costs the same at
    every size (the "flat" target), and the floor's own median moves by up to a tenth from one
    size to the next in one run, which the per-size ratios inherit."""
    return statistics.median([ms for size in sizes for ms in results[(name, size)]["append_samples"]])


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="history sizes, in messages"
    )
    parser.add_argument(
        "--turns", type=int, default=50, help="timed appends of one turn per size (default 50)"
    )
    parser.add_argument("--loads", type=int, default=5, help="timed whole-history loads per size (default 5)")
    parser.add_argument("--list-sessions", type=int, default=1000, help="sessions for the listing test")
    parser.add_argument("--list-messages", type=int, default=20, help="messages per session there")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to make the temp dirs (default: the system temp dir)"
    )
    args = parser.parse_args()

    base_parent = args.dir if args.dir is not None else Path(tempfile.gettempdir())
    base_parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="deskmate-store-bench-", dir=base_parent))
    stores, missing = available_stores()
    started = time.perf_counter()

    print("deskmate session-store benchmark")
    print(
        f"machine: Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()} {platform.machine()}; "
        f"temp dirs under {base_parent} on {filesystem_of(base)}; SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"versions: deskmate {version_of('deskmate')}, langchain-community {version_of('langchain-community')}, "
        f"langchain-core {version_of('langchain-core')}, openai-agents {version_of('openai-agents')}"
    )
    if missing:
        print(
            f"NOTE: {', '.join(missing)} not installed: measuring without that peer "
            "(use benchmarks/run_store_benchmark.sh)."
        )
    print(
        f"method: a fresh dir per store and size, history pre-filled in one write; then {WARMUP_TURNS} untimed "
        f"and {args.turns} timed rounds, each appending one turn (user {len(question(0))} B + assistant "
        f"{len(answer(1))} B) to every store and size in shuffled order; then {args.loads} rounds loading "
        "every whole history (page cache warm; the objects the run itself holds frozen out of the garbage collector, as a new process has none). Every store is driven through its async API; "
        "deskmate's Message objects and the floor's bytes are made before the timer starts."
    )
    print(f"load average at start: {load_average()}")
    print()

    durability: dict[str, str] = {}
    try:
        results = asyncio.run(measure_all(stores, args.sizes, base, args.turns, args.loads))
        for (name, _), result in results.items():
            durability[name] = result["durability"]
        print(f"  stores measured ({time.perf_counter() - started:.0f} s elapsed)", file=sys.stderr)
        listing_dir = base / "listing"
        listing_dir.mkdir()
        listing = asyncio.run(measure_listing(listing_dir, args.list_sessions, args.list_messages, repeats=3))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    names = [s.name for s in stores]
    short = {
        DeskmateStore.name: "deskmate",
        DeskmateDaemonStore.name: "deskmate(daemon)",
        DurableFloorStore.name: "floor",
        LangChainStore.name: "LangChain",
        AgentsSQLiteStore.name: "SQLiteSession",
    }

    print(f"Append one turn (user + assistant), ms per turn: median / p95 of {args.turns}")
    headers = ["messages", *[short[n] for n in names]]
    rows = []
    for size in args.sizes:
        cells = [f"{size:,}"]
        for n in names:
            r = results[(n, size)]
            cells.append(f"{fmt(r['append_median'])} / {fmt(r['append_p95'])}")
        rows.append(cells)
    print(table(headers, rows))
    print()

    ours = DeskmateStore.name
    floor_name = DurableFloorStore.name
    sqlite_name = AgentsSQLiteStore.name
    peers = [(n, f"/ {short[n]}") for n in (floor_name, sqlite_name) if n in names]
    if peers:
        print("deskmate's append over the floor and over SQLiteSession: ratio of the medians")
        rows = []
        for size in args.sizes:
            mine = results[(ours, size)]["append_median"]
            rows.append(
                [f"{size:,}", *[f"{mine / results[(n, size)]['append_median']:.2f}" for n, _ in peers]]
            )
        mine = pooled_median(results, ours, args.sizes)
        rows.append(["all sizes", *[f"{mine / pooled_median(results, n, args.sizes):.2f}" for n, _ in peers]])
        print(table(["messages", *[f"deskmate {label}" for _, label in peers]], rows))
        print()

    print(f"Load the whole history, ms: median of {args.loads}")
    loaded = [n for n, cls in zip(names, stores, strict=True) if cls.loads]
    rows = []
    for size in args.sizes:
        rows.append([f"{size:,}", *[fmt(results[(n, size)]["load_median"]) for n in loaded]])
    print(table(["messages", *[short[n] for n in loaded]], rows))
    print()

    print("What one append makes durable:")
    for n in names:
        print(f"  {short[n]:<13} {durability[n]}")
    print()

    print(
        f"Listing {args.list_sessions:,} deskmate sessions of {args.list_messages} messages, ms: median of 3"
    )
    ratio = listing["list"] / listing["load_all"]
    print(
        table(
            ["operation", "ms"],
            [
                ["FileBackend.list()", fmt(listing["list"])],
                [f"load() each of the {args.list_sessions:,}", fmt(listing["load_all"])],
                ["list / load-all", f"{ratio:.2f}"],
            ],
        )
    )
    print()

    print("Targets:")
    if DurableFloorStore in stores:
        limit = 1.25
        over = [
            s
            for s in args.sizes
            if results[(ours, s)]["append_median"] > limit * results[(floor_name, s)]["append_median"]
        ]
        ratios = ", ".join(
            f"{s:,}: {results[(ours, s)]['append_median'] / results[(floor_name, s)]['append_median']:.2f}x"
            for s in args.sizes
        )
        pooled = pooled_median(results, ours, args.sizes) / pooled_median(results, floor_name, args.sizes)
        verdict = "MET" if pooled <= limit else "NOT MET"
        print(
            f"  append at most {limit}x the bare write + fdatasync (all sizes pooled: {pooled:.2f}x; "
            f"per size {ratios}, over at {', '.join(f'{s:,}' for s in over) or 'none'}): {verdict}"
        )
    if AgentsSQLiteStore in stores:
        slower = [
            s
            for s in args.sizes
            if results[(ours, s)]["append_median"] > results[(sqlite_name, s)]["append_median"]
        ]
        pairs = ", ".join(
            f"{s:,}: {fmt(results[(ours, s)]['append_median'])} vs {fmt(results[(sqlite_name, s)]['append_median'])}"
            for s in args.sizes
        )
        verdict = "MET" if not slower else f"NOT MET (slower at {', '.join(f'{s:,}' for s in slower)})"
        print(f"  append no slower than SQLiteSession (median ms, ours vs theirs; {pairs}): {verdict}")
    medians = [results[(ours, s)]["append_median"] for s in args.sizes]
    spread = max(medians) / min(medians)
    print(
        f"  append flat from {args.sizes[0]:,} to {args.sizes[-1]:,} messages (largest/smallest median "
        f"{spread:.2f}x, flat = at most 1.5x): {'MET' if spread <= 1.5 else 'NOT MET'}"
    )
    if AgentsSQLiteStore in stores:
        big = args.sizes[-1]
        theirs_load = results[(sqlite_name, big)]["load_median"]
        for name, how in (
            (ours, "cold, new process"),
            (DeskmateDaemonStore.name, "reload in a running daemon"),
        ):
            ours_load = results[(name, big)]["load_median"]
            print(
                f"  load {big:,} messages in at most half SQLiteSession's time, {how} ({fmt(ours_load)} ms vs "
                f"{fmt(theirs_load)} ms = {ours_load / theirs_load:.2f}x): "
                f"{'MET' if ours_load <= 0.5 * theirs_load else 'NOT MET'}"
            )
    print(
        f"  listing {args.list_sessions:,} sessions well under loading them (list/load-all {ratio:.2f}, "
        f"well under = at most 0.2): {'MET' if ratio <= 0.2 else 'NOT MET'}"
    )
    print()
    print(f"load average at end: {load_average()}; total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
