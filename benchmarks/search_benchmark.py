"""Search across sessions: the index against ``rg -i -F`` over the same files, and what the
index costs an append and a rebuild; first listing pages.

On 1,000 sessions x 100 messages of code-heavy text (about 100,000 messages) in the file
store, measured in the same run:

- search p50 over a set of queries: the file store's local SQLite FTS5 index
  (``memory/search_index.py``, through ``IndexedBackend``) and, with ``--stores
  file,postgres``, PostgreSQL's server-side search, against ``rg -i -F`` over the
  session files (targets: <= 0.5x rg and <= 20 ms);
- a durable append (2 messages) with and without the index (target: +10% at most);
  "indexed" is the time until the index holds the turn too, which the append does not wait for;
- a full rebuild of the index against one cold load of every session (target: <= 2x);
- the first page of 50 of 100,000 sessions against listing them all (file store;
  target <= 50 ms and <= 1/100 of the whole listing).

Usage, with the project's venv (``rg`` on PATH):

    python benchmarks/search_benchmark.py [--stores file,postgres] [--sessions 1000] [--messages 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from backends_benchmark import POSTGRES  # noqa: E402
from deskmate.memory import FileBackend, Message, Session  # noqa: E402
from deskmate.memory.indexing import IndexedBackend  # noqa: E402
from deskmate.memory.search_index import Filters  # noqa: E402
from deskmate.memory.urls import backend_for_url  # noqa: E402
from store_benchmark import fmt, table  # noqa: E402

QUERIES = [
    "parse_config",  # an identifier
    "merge_with_backoff",
    "timeout",  # a topic word, in about a tenth of the messages
    '"connection refused"',  # a phrase
    "deadlock transaction",  # two words
    "ConnectionResetError",
    "the",  # the commonest word there is
    '"raise RuntimeError"',
]
ROUNDS = 7

PROSE = (
    "the function returns a value when the caller passes an argument and otherwise raises an error "
    "because the configuration file is missing so we retry the request and log it before the cache "
    "is cleared then the thread pool picks the next job from the queue while the event loop waits "
    "for the socket to become readable which can take longer than the default if the server is busy"
).split()
TOPICS = (
    "timeout connection refused database migration cache invalidation schema index transaction "
    "deadlock memory leak segmentation fault unicode decode error permission denied rate limit "
    "pagination serializer middleware websocket coroutine generator decorator fixture mock"
).split()
IDENTIFIERS = [
    f"{verb}_{noun}"
    for verb in ("parse", "load", "save", "retry", "fetch", "build", "render", "close", "open", "merge")
    for noun in (
        "config",
        "session",
        "request",
        "with_backoff",
        "index",
        "token",
        "payload",
        "row",
        "user",
        "cache",
    )
]
ERRORS = ("KeyError", "ValueError", "TimeoutError", "ConnectionResetError", "PermissionError", "IndexError")


def code_block(rng: random.Random) -> str:
    name, other, third = rng.choice(IDENTIFIERS), rng.choice(IDENTIFIERS), rng.choice(IDENTIFIERS)
    error = rng.choice(ERRORS)
    variable = rng.choice(("data", "rows", "result", "payload", "items", "value"))
    lines = rng.choice(
        [
            [
                f"def {name}({variable}, *, retries=3):",
                "    for attempt in range(retries):",
                f"        {variable} = {other}({variable})",
                f"    return {variable}",
            ],
            [
                f"async def {name}(self, path: str) -> dict:",
                "    try:",
                f"        {variable} = await self.{other}(path)",
                f"    except {error} as exc:",
                "        raise RuntimeError(path) from exc",
                f"    return {variable}",
            ],
            [
                f"class {name.title().replace('_', '')}:",
                f"    def __init__(self, {variable}):",
                f"        self.{variable} = {third}({variable})",
            ],
            [
                f"const {variable} = await {other}(req.body);",
                f"if (!{variable}) throw new Error('{name} failed');",
                f"return res.json({variable});",
            ],
            [
                f"SELECT id, {variable} FROM {rng.choice(IDENTIFIERS)} WHERE created_at > now() - interval '1 day';"
            ],
        ]
    )
    return "```\n" + "\n".join(lines) + "\n```"


def text(rng: random.Random) -> str:
    prose = " ".join(rng.choice(PROSE) for _ in range(rng.randint(15, 50)))
    topic = " ".join(rng.sample(TOPICS, 2))
    if rng.random() < 0.6:
        return f"{prose} {topic} in {rng.choice(IDENTIFIERS)}\n{code_block(rng)}"
    return f"{prose} {topic}"


def corpus(sessions: int, messages: int, folder: str) -> list[Session]:
    rng = random.Random(13)
    made = []
    for s in range(sessions):
        history = [
            Message(
                role="user" if i % 2 == 0 else "assistant",
                content=text(rng),
                timestamp=f"2026-11-{1 + s % 28:02d}T{i % 24:02d}:00:00.000Z",
            )
            for i in range(messages)
        ]
        made.append(Session(id=f"s{s:05d}", title=f"session {s}", workspace_uri=folder, messages=history))
    return made


def timed_ms(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


async def atimed_ms(action) -> float:
    start = time.perf_counter()
    await action()
    return (time.perf_counter() - start) * 1000


def listing_row(whole: float, page: float) -> list[str]:
    return [fmt(whole), fmt(page), f"1/{whole / page:.0f}", "met" if page <= 50 else "missed"]


def p50(values: list[float]) -> float:
    return statistics.median(values)


async def search_p50(backend, queries: list[str]) -> tuple[float, dict[str, int]]:
    times, totals = await search_times(backend, queries)
    return pooled_p50(times), totals


async def search_times(backend, queries: list[str]) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each query's times (ms, ROUNDS of them) and its total."""
    times: dict[str, list[float]] = {query: [] for query in queries}
    totals = {}
    for query in queries:  # warm
        totals[query] = (await backend.search(query, Filters(), 20))[1]
    for _ in range(ROUNDS):
        for query in queries:
            times[query].append(await atimed_ms(lambda q=query: backend.search(q, Filters(), 20)))
    return times, totals


def rg_times(directory: Path, queries: list[str]) -> dict[str, list[float]]:
    """Each query's times (ms) for ``rg -i -F`` over the session files."""
    rg = shutil.which("rg")
    if rg is None:
        raise SystemExit("rg (ripgrep) is not on PATH")
    times: dict[str, list[float]] = {query: [] for query in queries}
    for _ in range(ROUNDS):
        for query in queries:
            literal = query.strip('"')
            times[query].append(
                timed_ms(
                    lambda q=literal: subprocess.run(
                        [rg, "-i", "-F", "-c", q, str(directory)], capture_output=True
                    )
                )
            )
    return times


def pooled_p50(times: dict[str, list[float]]) -> float:
    return p50([t for each in times.values() for t in each])


async def append_costs(data_dir: Path, rounds: int = 200) -> dict[str, float]:
    """Medians (ms) of a durable 2-message append: plain, through the index wrapper (what the
    caller waits for), and until the index holds it too."""
    plain = FileBackend(data_dir / "plain")
    indexed = IndexedBackend(FileBackend(data_dir / "indexed"), data_dir / "indexed-search.sqlite3")
    rng = random.Random(1)
    results: dict[str, list[float]] = {"plain": [], "indexed": [], "index holds it": []}
    for backend in (plain, indexed):
        await backend.append("warm", [Message("user", "warm")], title="warm")
    await asyncio.sleep(0.2)
    for i in range(rounds):
        turn = [Message("user", text(rng)), Message("assistant", text(rng))]
        results["plain"].append(await atimed_ms(lambda t=turn, n=i: plain.append(f"p{n % 20}", t, title="t")))
        start = time.perf_counter()
        await indexed.append(f"i{i % 20}", turn, title="t")
        results["indexed"].append((time.perf_counter() - start) * 1000)
        await asyncio.get_running_loop().run_in_executor(indexed._writer, lambda: None)
        results["index holds it"].append((time.perf_counter() - start) * 1000)
    await plain.close()
    await indexed.close()
    return {key: p50(values) for key, values in results.items()}


async def cold_load_all(directory: Path) -> float:
    backend = FileBackend(directory)
    try:
        start = time.perf_counter()
        for info in await backend.list():
            await backend.load(info.id)
        return (time.perf_counter() - start) * 1000
    finally:
        await backend.close()


async def rebuild_from(url: str, index_path: Path) -> float:
    """A full rebuild of the index of the store at ``url`` (ms)."""
    backend = IndexedBackend(backend_for_url(url), index_path)
    try:
        await backend.inner.list()  # connecting is not timed
        start = time.perf_counter()
        backend.start()
        assert backend._catch_up is not None
        await backend._catch_up
        return (time.perf_counter() - start) * 1000
    finally:
        await backend.close()


async def cold_load_url(url: str) -> float:
    """Loading every session of the store at ``url`` with a new backend object (ms)."""
    backend = backend_for_url(url)
    try:
        infos = await backend.list()
        start = time.perf_counter()
        for info in infos:
            await backend.load(info.id)
        return (time.perf_counter() - start) * 1000
    finally:
        await backend.close()


async def rebuild(directory: Path, index_path: Path) -> float:
    for suffix in ("", "-wal", "-shm"):
        Path(str(index_path) + suffix).unlink(missing_ok=True)
    backend = IndexedBackend(FileBackend(directory), index_path)
    try:
        start = time.perf_counter()
        backend.start()
        assert backend._catch_up is not None
        await backend._catch_up
        return (time.perf_counter() - start) * 1000
    finally:
        await backend.close()


async def write_many_sessions(directory: Path, count: int) -> None:
    """``count`` small session files, made by copying one the FileBackend wrote (with its id
    changed), without an fsync each: the listing, not the writing, is measured."""
    model_store = FileBackend(directory)
    await model_store.save(Session(id="model0", title="t", messages=[Message("user", "hello")]))
    await model_store.close()
    sessions = directory / "sessions"
    model = (sessions / "model0.jsonl").read_bytes()
    for i in range(count):
        (sessions / f"m{i:06d}.jsonl").write_bytes(model.replace(b'"model0"', f'"m{i:06d}"'.encode(), 1))
    (sessions / "model0.jsonl").unlink()


async def listing_costs(data_dir: Path, storage_url: str | None = None) -> tuple[float, float]:
    """Medians (ms) of listing every session (the store's ``list``) and of the first page of 50
    as listSessions serves it (``Sessions.page``: the store's own pages, or the search index)."""
    from deskmate.engine import Assistant, Settings

    assistant = Assistant(Settings(data_dir=str(data_dir), storage_url=storage_url))
    try:
        backend = assistant.store.backend
        backend.start()
        if backend._catch_up is not None:
            await backend._catch_up  # a running daemon has caught up long before
        whole, page = [], []
        for _ in range(5):
            gc.collect()  # the garbage of the step before is not this step's cost
            whole.append(await atimed_ms(lambda: backend.list()))
            gc.collect()
            page.append(await atimed_ms(lambda: assistant.sessions.page(all=True, limit=50)))
        first, _ = await assistant.sessions.page(all=True, limit=50)
        assert len(first) == 50
        return p50(whole), p50(page)
    finally:
        await assistant.close()


async def postgres_with_many_sessions(url: str, count: int) -> None:
    """``count`` small sessions written straight into the schema (one statement per 10,000)."""
    import psycopg

    backend = backend_for_url(url)
    await backend.list()  # creates the schema
    await backend.close()
    schema = url.rsplit("=", 1)[1]
    with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as connection:
        for start in range(0, count, 10_000):
            rows = [
                (
                    f"m{i:06d}",
                    f"session {i}",
                    None,
                    f"2026-11-01T00:00:{i % 60:02d}.000Z",
                    f"2026-11-{1 + i % 28:02d}T00:00:00.{i % 1000:03d}Z",
                    [],
                    1,
                    "{}",
                )
                for i in range(start, min(count, start + 10_000))
            ]
            with connection.cursor() as cursor:
                cursor.executemany(
                    f'INSERT INTO "{schema}".sessions (id, title, workspace_uri, created_at, updated_at, tags, message_count, meta) '
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
        connection.execute(f'ANALYZE "{schema}".sessions')


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="deskmate-search-bench-"))
    folder = (tmp / "project").as_uri()
    try:
        sessions = corpus(args.sessions, args.messages, folder)
        files = FileBackend(tmp / "files")
        for session in sessions:
            await files.save(session)
        await files.close()
        session_dir = tmp / "files" / "sessions"
        size = sum(p.stat().st_size for p in session_dir.glob("*.jsonl")) / 1e6
        print(f"{args.sessions} sessions x {args.messages} messages, {size:.0f} MB of session files\n")

        index_path = tmp / "search.sqlite3"
        rebuild_ms = await rebuild(tmp / "files", index_path)
        load_ms = await cold_load_all(tmp / "files")
        rebuilds = [["file", fmt(rebuild_ms), fmt(load_ms), f"{rebuild_ms / load_ms:.2f}x"]]
        rows = []
        indexed = IndexedBackend(FileBackend(tmp / "files"), index_path)
        per_query = {}
        per_query["file"], totals = await search_times(indexed, QUERIES)
        await indexed.close()
        per_query["rg -i -F"] = rg_times(session_dir, QUERIES)
        index_p50, rg = pooled_p50(per_query["file"]), pooled_p50(per_query["rg -i -F"])
        rows.append(["file (SQLite FTS5)", fmt(index_p50), fmt(rg), f"{index_p50 / rg:.2f}x"])
        if "postgres" in args.stores:
            url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema=searchbench{random.randrange(10**6)}"
            pg = backend_for_url(url)
            try:
                for session in sessions:
                    await pg.save(session)
                # Vacuumed and analyzed, as autovacuum keeps a store that grew to this size over
                # weeks (just written, the tables have no statistics, plans are guesses, and the
                # words index holds recent rows in a pending list it scans apart).
                import psycopg

                schema = url.rsplit("=", 1)[1]
                with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as connection:
                    connection.execute(f'VACUUM ANALYZE "{schema}".messages, "{schema}".sessions')
                per_query["PostgreSQL"], _ = await search_times(pg, QUERIES)
                pg_p50 = pooled_p50(per_query["PostgreSQL"])
                rows.append(["PostgreSQL (server-side)", fmt(pg_p50), fmt(rg), f"{pg_p50 / rg:.2f}x"])
            finally:
                await pg.close()
                import psycopg

                with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')
        shared = [name for name in args.stores if name in ("redis", "s3")]
        if shared:  # their search is the same local index, caught up from the store
            from backends_benchmark import Stores

            stores = Stores(shared)
            try:
                for name, url in stores.urls.items():
                    store = backend_for_url(url)
                    for session in sessions:
                        await store.save(session)
                    await store.close()
                    path = tmp / f"{name}.sqlite3"
                    built = await rebuild_from(url, path)
                    loaded = await cold_load_url(url)
                    rebuilds.append([name, fmt(built), fmt(loaded), f"{built / loaded:.2f}x"])
                    searched = IndexedBackend(backend_for_url(url), path)
                    shared_p50, _ = await search_p50(searched, QUERIES)
                    await searched.close()
                    rows.append(
                        [f"{name} (local SQLite FTS5)", fmt(shared_p50), fmt(rg), f"{shared_p50 / rg:.2f}x"]
                    )
            finally:
                stores.close()
        print("Search p50 (ms) over", len(QUERIES), "queries x", ROUNDS, "rounds; matches:", totals)
        print(table(["store", "search p50", "rg -i -F p50", "search / rg (<= 0.5x, <= 20 ms)"], rows))
        print("\nPer query, median of", ROUNDS, "(ms)")
        print(
            table(
                ["query", "matches", *per_query],
                [
                    [query, f"{totals[query]:,}", *(fmt(p50(times[query])) for times in per_query.values())]
                    for query in QUERIES
                ],
            )
        )

        costs = await append_costs(tmp / "append")
        print("\nDurable append of one turn (2 messages), median of 200 (ms)")
        print(
            table(
                ["plain", "with index", "overhead (<= 10%)", "until indexed"],
                [
                    [
                        fmt(costs["plain"]),
                        fmt(costs["indexed"]),
                        f"{(costs['indexed'] / costs['plain'] - 1) * 100:+.1f}%",
                        fmt(costs["index holds it"]),
                    ]
                ],
            )
        )
        print("\nFull rebuild of the index (ms)")
        print(table(["store", "rebuild", "cold load of every session", "rebuild / load (<= 2x)"], rebuilds))
        if args.listing:
            many = tmp / "many"
            await write_many_sessions(many, args.listing)
            rows = [["file", *listing_row(*await listing_costs(many))]]
            if "postgres" in args.stores:
                url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema=listbench{random.randrange(10**6)}"
                try:
                    await postgres_with_many_sessions(url, args.listing)
                    rows.append(["PostgreSQL", *listing_row(*await listing_costs(tmp / "pg-data", url))])
                finally:
                    import psycopg

                    with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as connection:
                        connection.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')
            print(f"\nListing {args.listing:,} sessions (ms, median of 5)")
            print(
                table(
                    ["store", "list all", "first page of 50", "page / all (<= 1/100)", "page <= 50 ms"], rows
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stores", default="file", help="file, and any of postgres, redis, s3; comma-separated"
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument(
        "--listing", type=int, default=0, help="also time listing this many sessions (e.g. 100000)"
    )
    args = parser.parse_args()
    args.stores = args.stores.split(",")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
