"""Forking on every session store: the cost of a fork of a long session, and of loading a fork.

A fork copies its history: one ``load`` of the source and one ``save`` of the prefix
(``engine/forks.py``), then the folder's active session is written. This measures that whole
engine path against one load of the source, on each store, and a fork's load against the
load of a plain session of the same length. Usage, with the project's venv:

    python benchmarks/fork_benchmark.py [--stores file,postgres,redis,s3] [--messages 10000] [--rounds 7]

The stores are those of ``backends_benchmark.py`` (PostgreSQL and Redis on 127.0.0.1, S3
through a moto server this script starts); each gets a namespace of its own, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from backends_benchmark import Stores, message  # noqa: E402
from deskmate.engine import Assistant, Settings  # noqa: E402
from deskmate.memory import Session  # noqa: E402
from deskmate.memory.urls import backend_for_url  # noqa: E402
from store_benchmark import fmt, table  # noqa: E402

FILE_TARGET_MS = 100.0  # a fork of 10,000 messages on the file store
SHARED_TARGET = 2.0  # a fork, in loads of its source, on a shared store
LOAD_TARGET = 1.1  # a fork's load over a plain session's of the same length


async def timed(action) -> float:
    start = time.perf_counter()
    await action()
    return (time.perf_counter() - start) * 1000


async def cold_load(url: str, session_id: str) -> tuple[float, Session | None]:
    """A load by a new backend object (a daemon that just started; connecting is not timed)."""
    fresh = backend_for_url(url)
    try:
        await fresh.list()
        gc.collect()  # the garbage of the step before is not this load's cost
        start = time.perf_counter()
        loaded = await fresh.load(session_id)
        return (time.perf_counter() - start) * 1000, loaded
    finally:
        await fresh.close()


async def measure(url: str, size: int, rounds: int) -> dict[str, float]:
    """Medians (ms) of: a load of the source, a fork of it at its last message (the engine's
    whole path), and loads of that fork and of a plain session of the same length; loads by a
    new backend object, so no store's cache answers them. Interleaved round by round."""
    backend = backend_for_url(url)
    data_dir = Path(tempfile.mkdtemp(prefix="deskmate-fork-bench-"))
    folder = (data_dir / "project").as_uri()
    assistant = Assistant(Settings(data_dir=str(data_dir / "data")), backend=backend)
    assistant.sessions.workspaces.set_folders([folder])
    try:
        history = [message(i) for i in range(size)]
        await backend.save(Session(id="source", title="bench", workspace_uri=folder, messages=history))
        await backend.save(Session(id="plain", title="bench", workspace_uri=folder, messages=history))
        ref = assistant.sessions.resolve(session_id="source")
        last = history[-1].id
        await backend.delete((await assistant.forks.fork(ref, last))[0].id)  # warm, as a running daemon is
        times: dict[str, list[float]] = {
            "load": [],
            "save": [],
            "fork": [],
            "fork load": [],
            "plain load": [],
        }
        for round_number in range(rounds):
            times["load"].append((await cold_load(url, "source"))[0])
            copy = Session(id="copy", title="bench", workspace_uri=folder, messages=history)
            gc.collect()
            start = time.perf_counter()
            await backend.save(copy)  # what a fork writes, alone
            times["save"].append((time.perf_counter() - start) * 1000)
            await backend.delete("copy")
            gc.collect()
            start = time.perf_counter()
            fork, _ = await assistant.forks.fork(ref, last)
            times["fork"].append((time.perf_counter() - start) * 1000)
            # The fork's mark on its source (lastForkAt) is written once the fork has returned:
            # let it end before the loads are timed, as it does before a user's next action.
            await assistant.forks.close()
            order = ["fork load", "plain load"][:: 1 if round_number % 2 else -1]
            for name in order:
                elapsed, loaded = await cold_load(url, fork.id if name == "fork load" else "plain")
                assert loaded is not None and len(loaded.messages) == size
                times[name].append(elapsed)
            await backend.delete(fork.id)
        return {name: statistics.median(values) for name, values in times.items()}
    finally:
        await assistant.close()
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="file,postgres,redis,s3")
    parser.add_argument("--messages", type=int, default=10_000, help="length of the forked session")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (median reported)")
    args = parser.parse_args()
    stores = Stores(args.stores.split(","))
    try:
        results = {
            name: asyncio.run(measure(url, args.messages, args.rounds)) for name, url in stores.urls.items()
        }
    finally:
        stores.close()

    print(
        f"Forking a {args.messages:,}-message session at its last message (forks copy: one load + one save "
        f"of the prefix), median of {args.rounds} rounds, ms"
    )
    rows = []
    for name, r in results.items():
        fork_in_loads = r["fork"] / r["load"]
        if name == "file":
            target, met = f"<= {FILE_TARGET_MS:.0f} ms", r["fork"] <= FILE_TARGET_MS
        else:
            target, met = f"<= {SHARED_TARGET:g}x load", fork_in_loads <= SHARED_TARGET
        ratio = r["fork load"] / r["plain load"]
        rows.append(
            [
                name,
                fmt(r["load"]),
                fmt(r["save"]),
                fmt(r["fork"]),
                f"{fork_in_loads:.2f}x",
                f"{target}: {'met' if met else 'MISSED'}",
                fmt(r["fork load"]),
                fmt(r["plain load"]),
                f"{ratio:.2f}x ({'met' if ratio <= LOAD_TARGET else 'MISSED'})",
            ]
        )
    print(
        table(
            [
                "store",
                "load source",
                "save alone",
                "fork",
                "fork/load",
                "fork target",
                "load fork",
                "load plain",
                f"fork/plain (<= {LOAD_TARGET:g}x)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
