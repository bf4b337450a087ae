"""Every session store in one run: per-turn append and load at 10 / 1,000 / 10,000 messages,
and appends per second from 1 and from 8 concurrent writer processes on different sessions.

The stores are the real servers: files in a temp dir, PostgreSQL and Redis on
127.0.0.1 (as the tests use them), and S3 through a local moto server this
script starts. Usage, with the project's venv (``pip install -e '.[test]'``):

    python benchmarks/backends_benchmark.py [--stores file,postgres,redis,s3] [--sizes 10,1000,10000]

Each store gets a namespace of its own, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from deskmate.memory import Message, Session  # noqa: E402
from deskmate.memory.urls import backend_for_url  # noqa: E402
from store_benchmark import fmt, table  # noqa: E402

POSTGRES = os.environ.get("DESKMATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DESKMATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
S3_BUCKET = "deskmate-bench"


def message(i: int) -> Message:
    # ~200 characters: a short question or a paragraph of an answer.
    return Message(role="user" if i % 2 == 0 else "assistant", content=f"message {i} " + "lorem ipsum " * 16)


class Stores:
    """Where each store lives for this run, and how to clean it up."""

    def __init__(self, names: list[str]) -> None:
        self.run_id = f"bench{uuid.uuid4().hex[:8]}"
        self.tmp = Path(tempfile.mkdtemp(prefix="deskmate-bench-"))
        self.moto: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, str] = {}
        for name in names:
            self.urls[name] = getattr(self, f"_{name}")()

    def _file(self) -> str:
        return (self.tmp / "files").as_uri()

    def _postgres(self) -> str:
        return f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={self.run_id}"

    def _redis(self) -> str:
        return f"{REDIS}{'&' if '?' in REDIS else '?'}prefix={self.run_id}"

    def _s3(self) -> str:
        import boto3

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=S3_BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return f"s3://{S3_BUCKET}/{self.run_id}?endpoint={endpoint}&region=us-east-1"

    def close(self) -> None:
        if "postgres" in self.urls:
            import psycopg

            with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{self.run_id}" CASCADE')
        if "redis" in self.urls:
            import redis

            with redis.Redis.from_url(REDIS.split("?")[0]) as client:
                keys = list(client.scan_iter(match=f"{self.run_id}:*", count=1000))
                for start in range(0, len(keys), 1000):
                    client.unlink(*keys[start : start + 1000])
        if self.moto is not None:
            self.moto.terminate()
            self.moto.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


async def per_size(url: str, size: int, appends: int) -> dict[str, float]:
    """Median / p95 ms of a durable 2-message append after ``size`` messages, and load times."""
    session_id = f"n{size}"
    backend = backend_for_url(url)
    try:
        await backend.save(Session(id=session_id, title="bench", messages=[message(i) for i in range(size)]))
        await backend.append(session_id, [message(0), message(1)])  # connections warm
        times = []
        for i in range(appends):
            turn = [message(size + 2 * i), message(size + 2 * i + 1)]
            start = time.perf_counter()
            await backend.append(session_id, turn)
            times.append((time.perf_counter() - start) * 1000)
        warm = []
        for _ in range(5):
            start = time.perf_counter()
            loaded = await backend.load(session_id)
            warm.append((time.perf_counter() - start) * 1000)
        assert loaded is not None and len(loaded.messages) == size + 2 + 2 * appends
    finally:
        await backend.close()
    cold = []
    for _ in range(3):  # a new backend object: a daemon that just started (connection included)
        fresh = backend_for_url(url)
        try:
            await fresh.list()  # connect first: the load is what is measured
            start = time.perf_counter()
            await fresh.load(session_id)
            cold.append((time.perf_counter() - start) * 1000)
        finally:
            await fresh.close()
    times.sort()
    return {
        "append": statistics.median(times),
        "append95": times[int(len(times) * 0.95) - 1],
        "load": statistics.median(warm),
        "cold": statistics.median(cold),
    }


def throughput(url: str, writers: int, seconds: float) -> float:
    """Appends per second from ``writers`` processes, each on its own session, all at once."""
    start_at = time.time() + 2.0  # every writer has started and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--writer", url, f"w{writers}-{n}", str(start_at), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    total = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"writer failed on {url}")
        total += int(out.split()[-1])
    return total / seconds


async def writer(url: str, session_id: str, start_at: float, seconds: float) -> None:
    backend = backend_for_url(url)
    try:
        await backend.append(session_id, [message(0)])  # connect before the clock starts
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = time.monotonic() + seconds
        count = 0
        while time.monotonic() < end:
            await backend.append(session_id, [message(count), message(count + 1)])
            count += 1
        print(count)
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="file,postgres,redis,s3")
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--appends", type=int, default=30, help="appends timed per size")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run")
    parser.add_argument("--writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        url, session_id, start_at, seconds = args.writer
        asyncio.run(writer(url, session_id, float(start_at), float(seconds)))
        return

    names = args.stores.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = Stores(names)
    try:
        results = {
            name: {size: asyncio.run(per_size(url, size, args.appends)) for size in sizes}
            for name, url in stores.urls.items()
        }
        rates = {
            name: (throughput(url, 1, args.seconds), throughput(url, args.writers, args.seconds))
            for name, url in stores.urls.items()
        }
    finally:
        stores.close()

    print(
        f"Durable append of one turn (2 messages), median / p95 ms, after N stored messages ({args.appends} appends)"
    )
    print(
        table(
            ["store", *(f"N={s:,}" for s in sizes)],
            [
                [n, *(f"{fmt(r[s]['append'])} / {fmt(r[s]['append95'])}" for s in sizes)]
                for n, r in results.items()
            ],
        )
    )
    print()
    print("Load of a whole session, median ms: same backend object / a new one (a daemon just started)")
    print(
        table(
            ["store", *(f"N={s:,}" for s in sizes)],
            [[n, *(f"{fmt(r[s]['load'])} / {fmt(r[s]['cold'])}" for s in sizes)] for n, r in results.items()],
        )
    )
    print()
    print(f"Appends per second, writer processes on different sessions ({args.seconds:g} s each)")
    print(
        table(
            ["store", "1 writer", f"{args.writers} writers", "scaling"],
            [[n, f"{one:,.0f}", f"{many:,.0f}", f"{many / one:.1f}x"] for n, (one, many) in rates.items()],
        )
    )


if __name__ == "__main__":
    main()
