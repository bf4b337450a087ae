"""Live sessions on every store: how long after another process stores a turn a watching daemon
hears of it, and what the answering lease costs. Target (issue 17): changes within 1 s.

The stores are the real servers, as in backends_benchmark.py: files in a temp dir (inotify
through watchfiles, and its polling fallback), PostgreSQL (LISTEN/NOTIFY) and Redis (pub/sub)
on 127.0.0.1, S3 through a local moto server (polling). Usage, with the project's venv:

    python benchmarks/live_benchmark.py [--stores file,file-polling,postgres,redis,s3] [--turns 30]

A writer process appends one turn at a time to a session (a separate process, so nothing is
shared with the watcher but the store); the watcher, in this process, follows that session.
Latency is from the moment the writer's append returned (wall clock, one machine) to the
moment the watch reported the change: what a daemon adds on top of the write itself. Turns are
spaced 150-350 ms apart at random, so a polled store's phase is not always the same.

End to end (``--mode end-to-end``, or ``both``, the default): the same writer, and in place of
the in-process watch a real daemon (``python -m deskmate lsp`` over stdio, its own process)
whose client opened the session (``deskmate.getSession``); latency runs from the writer's
append returning to that client receiving ``deskmate/sessionChanged``: the store's means, the
daemon's reading of the summary, and the notification over JSON-RPC, as an editor sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from backends_benchmark import Stores  # noqa: E402
from deskmate.memory import Message  # noqa: E402
from deskmate.memory.urls import backend_for_url  # noqa: E402
from deskmate.memory.watching import LEASE_SECONDS  # noqa: E402
from store_benchmark import fmt, table  # noqa: E402

SESSION = "live-bench"
TARGET_MS = 1000.0


async def start_writer(url: str) -> asyncio.subprocess.Process:
    """This script as the writing process (``--writer``): it appends a turn at each line it reads."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--writer",
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def written_turn(proc: asyncio.subprocess.Process) -> float:
    """After a pause of 0.15-0.35 s, have the writer append a turn; the wall-clock time it was stored."""
    assert proc.stdin is not None and proc.stdout is not None
    await asyncio.sleep(random.uniform(0.15, 0.35))
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    return float((await proc.stdout.readline()).decode())


async def writer(url: str) -> None:
    """The other process: on each line from stdin, append a turn; print when the append returned."""
    backend = backend_for_url(url)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            turn = [Message(role="user", content="q " * 40), Message(role="assistant", content="a " * 200)]
            await backend.append(SESSION, turn)
            sys.stdout.write(f"{time.time()}\n")
            sys.stdout.flush()
    finally:
        await backend.close()


async def latencies(url: str, turns: int, polling: bool) -> tuple[list[float], str]:
    backend = backend_for_url(url)
    await backend.append(SESSION, [Message(role="user", content="first")])
    watch = backend.watch()
    if polling:
        watch.force_polling = True  # the file store's fallback where inotify is unavailable
    await watch.follow(SESSION)
    reported: asyncio.Queue[float] = asyncio.Queue()

    async def listen() -> None:
        async for _ in watch.changes():
            reported.put_nowait(time.time())

    listener = asyncio.ensure_future(listen())
    await asyncio.wait_for(watch.ready.wait(), 30)
    proc = await start_writer(url)
    results: list[float] = []
    try:
        for i in range(turns + 2):
            stored = await written_turn(proc)
            heard = await asyncio.wait_for(reported.get(), 30)
            if i >= 2:  # the first two warm connections and caches
                results.append((heard - stored) * 1000)
    finally:
        proc.stdin.close()
        await proc.wait()
        mechanism = watch.mechanism
        await watch.close()
        await asyncio.wait_for(listener, 10)
        await backend.close()
    return results, mechanism


async def start_daemon(url: str, work: Path, polling: bool) -> tuple[Any, list[tuple[float, int]]]:
    """A real daemon on ``url`` (stdio, its own process) and the sessionChanged notifications its
    client receives: the wall-clock time each arrived, and the session's message count it gave."""
    from lsprotocol import types
    from pytest_lsp import ClientServerConfig, client_capabilities

    folder = work / "project"
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DESKMATE_", "WATCHFILES_"))}
    if polling:
        env["WATCHFILES_FORCE_POLLING"] = "1"  # the file store's fallback, as on a network file system
    client = await ClientServerConfig(
        server_command=[sys.executable, "-m", "deskmate", "lsp"], server_env=env
    ).start()
    heard: list[tuple[float, int]] = []

    @client.feature("deskmate/sessionChanged")
    def on_change(params: Any) -> None:
        heard.append((time.time(), getattr(params, "messageCount", None)))

    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={
                "baseUrl": "http://127.0.0.1:9/v1",  # never asked: nothing is sent to a model
                "model": "test-model",
                "dataDir": str(work / "data"),
                "storageUrl": url,
            },
            workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
            root_uri=folder.as_uri(),
        )
    )
    return client, heard


async def daemon_latencies(url: str, turns: int, polling: bool, work: Path) -> list[float]:
    """Ms from another process's append returning to a daemon's client hearing of it."""
    from lsprotocol import types

    backend = backend_for_url(url)
    await backend.append(SESSION, [Message(role="user", content="first")])
    await backend.close()
    client, heard = await start_daemon(url, work, polling)
    proc = None
    results: list[float] = []
    try:
        shown = types.ExecuteCommandParams(command="deskmate.getSession", arguments=[{"sessionId": SESSION}])
        count = (await client.workspace_execute_command_async(shown))["messageCount"]
        proc = await start_writer(url)
        for i in range(turns + 2):
            stored = await written_turn(proc)
            count += 2
            deadline = time.monotonic() + 30
            while not any(counted == count for _, counted in heard):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no sessionChanged with messageCount {count} in 30 s: {heard}")
                await asyncio.sleep(0.002)  # the client's own loop receives it; this only looks
            arrived = next(at for at, counted in heard if counted == count)
            if i >= 2:  # the first two warm connections and caches
                results.append((arrived - stored) * 1000)
    finally:
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            await proc.wait()
        try:
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await client.stop()
    return results


async def lease_cost(url: str, rounds: int = 30) -> float:
    """Median ms of one claim (taking the lease) plus one release: what every ask adds."""
    backend = backend_for_url(url)
    times = []
    try:
        for i in range(rounds + 2):
            start = time.perf_counter()
            assert await backend.claim_answer(f"lease-{i}", "bench", LEASE_SECONDS)
            await backend.release_answer(f"lease-{i}", "bench")
            if i >= 2:
                times.append((time.perf_counter() - start) * 1000)
    finally:
        await backend.close()
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(found: list[float]) -> list[str]:
    """Median, p90 and max ms, and whether the max is within the target."""
    return [
        fmt(statistics.median(found)),
        fmt(percentile(found, 0.9)),
        fmt(max(found)),
        "met" if max(found) < TARGET_MS else "NOT met",
    ]


async def run(stores: list[str], turns: int, mode: str) -> None:
    kinds = {name: name.removesuffix("-polling") for name in stores}
    opened = Stores(sorted(set(kinds.values())))
    rows, end_to_end = [], []
    try:
        for name in stores:
            url = opened.urls[kinds[name]]
            polling = name == "file-polling"
            if polling:  # a store of its own: the two file runs share nothing
                url = (opened.tmp / "files-polling").as_uri()
            if mode in ("watch", "both"):
                found, mechanism = await latencies(url, turns, polling)
                lease = await lease_cost(url)
                kill = "at once (flock)" if kinds[name] == "file" else f"<= {LEASE_SECONDS:g} s (expiry)"
                rows.append([name, mechanism, *spread(found), fmt(lease), kill])
            if mode in ("end-to-end", "both"):
                if mode == "both":  # a session of its own: the watch's turns are not counted twice
                    url = url if kinds[name] != "file" else (opened.tmp / f"e2e-{name}").as_uri()
                    await clear(url)
                found = await daemon_latencies(url, turns, polling, opened.tmp / f"daemon-{name}")
                end_to_end.append([name, *spread(found)])
            print(f"  {name}: done", file=sys.stderr)
    finally:
        opened.close()
    print(f"\nLive sessions: {turns} turns per store, written by another process")
    print(
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})\n"
    )
    if rows:
        headers = ["store", "how it hears", "median ms", "p90 ms", "max ms", "< 1 s", "lease ms"]
        print(table([*headers, "a killed holder's lease ends"], rows))
        print(
            "\nms: from the writer's append returning to the watcher's report; lease: one claim + release.\n"
        )
    if end_to_end:
        print(table(["store (end to end)", "median ms", "p90 ms", "max ms", "< 1 s"], end_to_end))
        print(
            "\nms: from the writer's append returning to deskmate/sessionChanged arriving at the client of a"
            "\nsecond daemon (python -m deskmate lsp over stdio) that had opened the session."
        )


async def clear(url: str) -> None:
    """The benchmark's session gone from ``url``, for a second run on the same store."""
    backend = backend_for_url(url)
    try:
        await backend.delete(SESSION)
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="file,file-polling,postgres,redis,s3")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument(
        "--mode",
        choices=("watch", "end-to-end", "both"),
        default="both",
        help="watch: the store's watch in this process; end-to-end: a real daemon's client",
    )
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        asyncio.run(writer(args.writer))
        return
    asyncio.run(run(args.stores.split(","), args.turns, args.mode))


if __name__ == "__main__":
    main()
