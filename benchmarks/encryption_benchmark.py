"""Encryption and compression: what they cost an append and a cold load, and what compression
saves, against the same store with both off, in one run (interleaved, so each mode sees the
same background load).

    .venv/bin/python benchmarks/encryption_benchmark.py [--rounds 200] [--messages 10000]

The corpus is code-heavy, as an editor assistant's sessions are: each turn is a question with a
source file as context (2-20 KB of Python from this machine's installed packages) and an answer
with a code block. Stores: files (always), Redis and PostgreSQL on 127.0.0.1 when they answer,
and S3 through a local moto server this script starts (moto comes with the test extras).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))
sys.path.insert(0, str(Path(__file__).parent))

from backends_benchmark import S3_BUCKET, Stores  # noqa: E402
from deskmate.memory import FileBackend, Message, codec, keys, sealing  # noqa: E402
from deskmate.memory.sealed import SealedLabels  # noqa: E402

MODES = {"off": (False, False), "encrypted": (True, False), "compressed": (False, True), "both": (True, True)}
STORES = ["file", "redis", "postgres", "s3"]


def corpus(turns: int, seed: int = 7) -> list[list[Message]]:
    rng = random.Random(seed)
    files = [
        p
        for p in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py"))
        if 2_000 < p.stat().st_size < 20_000
    ]
    rng.shuffle(files)
    out = []
    for i in range(turns):
        source = files[i % len(files)].read_text(errors="replace")
        start = rng.randrange(0, max(1, len(source) - 1500))
        snippet = source[start : start + 1500]
        out.append(
            [
                Message(
                    role="user",
                    content=f"Why does this raise when the input is empty? ({i})",
                    context={
                        "uri": f"file:///project/{files[i % len(files)].name}",
                        "languageId": "python",
                        "text": source,
                    },
                ),
                Message(
                    role="assistant",
                    content=f"The loop assumes at least one item. Guard it:\n\n```python\n{snippet}\n```\n\nThen retry.",
                    model="gpt-4o-mini",
                    usage={
                        "promptTokens": len(source) // 4,
                        "completionTokens": 400,
                        "totalTokens": len(source) // 4 + 400,
                    },
                ),
            ]
        )
    return out


def use_mode(mode: str) -> None:
    encrypt, compress = MODES[mode]
    codec.set_writing(sealing.encoding_for(encrypt=encrypt, compress=compress))


def open_store(kind: str, where: str, mode: str):
    encrypt = MODES[mode][0]
    if kind == "file":
        inner = FileBackend(Path(where))
    else:
        from deskmate.memory.urls import backend_for_url

        inner = backend_for_url(where)
    return SealedLabels(inner, seal=encrypt)


def locations(kind: str, tmp: Path, s3_endpoint: str | None) -> dict[str, str]:
    names = {mode: f"b{uuid.uuid4().hex[:10]}" for mode in MODES}
    if kind == "file":
        return {mode: str(tmp / name) for mode, name in names.items()}
    if kind == "redis":
        return {mode: f"redis://127.0.0.1:6379/0?prefix={name}" for mode, name in names.items()}
    if kind == "s3":
        return {
            mode: f"s3://{S3_BUCKET}/{name}?endpoint={s3_endpoint}&region=us-east-1"
            for mode, name in names.items()
        }
    return {mode: f"postgresql://postgres@127.0.0.1:5432/test?schema={name}" for mode, name in names.items()}


def stored_message_bytes(kind: str, where: str, store) -> int:
    if kind == "file":
        return sum(p.stat().st_size for p in Path(where, "sessions").glob("*.jsonl"))
    if kind == "redis":
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        prefix = where.rsplit("prefix=", 1)[1]
        total = 0
        for key in client.scan_iter(match=f"{prefix}:*:messages"):
            total += sum(len(v) for v in client.lrange(key, 0, -1))
        return total
    if kind == "s3":
        import boto3

        endpoint = where.split("endpoint=", 1)[1].split("&", 1)[0]
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        prefix = where.split(f"s3://{S3_BUCKET}/", 1)[1].split("?", 1)[0] + "/sessions/"
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
        # A session's base and segments hold its messages; its manifest names them.
        return sum(
            item["Size"]
            for page in pages
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/manifest.json")
        )
    import psycopg

    schema = where.rsplit("schema=", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        return conn.execute(
            f"SELECT coalesce(sum(octet_length(data::text)), 0) FROM {schema}.messages"
        ).fetchone()[0]


def drop(kind: str, where: str) -> None:
    if kind == "redis":
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        prefix = where.rsplit("prefix=", 1)[1]
        keys_ = list(client.scan_iter(match=f"{prefix}:*"))
        if keys_:
            client.unlink(*keys_)
    elif kind == "postgres":
        import psycopg

        schema = where.rsplit("schema=", 1)[1]
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def reachable(kind: str) -> bool:
    try:
        if kind == "redis":
            import redis

            return bool(redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping())
        if kind == "postgres":
            import psycopg

            psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2).close()
            return True
        if kind == "s3":
            import moto.server  # noqa: F401

            return True
    except Exception:
        return False
    return True


async def bench(
    kind: str, tmp: Path, turns: list[list[Message]], rounds: int, load_messages: int, s3_endpoint: str | None
) -> dict:
    where = locations(kind, tmp, s3_endpoint)
    stores = {}
    for mode in MODES:
        use_mode(mode)
        stores[mode] = open_store(kind, where[mode], mode)
    # Stored bytes: the whole corpus (first 200 turns) written in each mode.
    sizes = {}
    for mode, store in stores.items():
        use_mode(mode)
        for turn in turns[:200]:
            await store.append("bytes", turn, title="Corpus", workspace_uri="file:///project")
        sizes[mode] = stored_message_bytes(kind, where[mode], store)
    # Durable appends of one turn, modes interleaved in a shuffled order each round.
    times = {mode: [] for mode in MODES}
    order = list(MODES)
    for r in range(rounds + 3):
        random.shuffle(order)
        turn = turns[200 + r % (len(turns) - 200)]
        for mode in order:
            use_mode(mode)
            start = time.perf_counter()
            await stores[mode].append("appends", turn, title="Appends")
            if r >= 3:
                times[mode].append((time.perf_counter() - start) * 1000)
    # Cold load of load_messages messages: a new backend per load, as a new process.
    loads = {mode: [] for mode in MODES}
    for mode, store in stores.items():
        use_mode(mode)
        big = [m for t in (turns * (load_messages // (2 * len(turns)) + 1)) for m in t][:load_messages]
        fresh = [
            Message(role=m.role, content=m.content, context=m.context, model=m.model, usage=m.usage)
            for m in big
        ]
        await store.append("load", fresh, title="Load")
    for _ in range(5):
        random.shuffle(order)
        for mode in order:
            use_mode(mode)
            reader = open_store(kind, where[mode], mode)
            start = time.perf_counter()
            session = await reader.load("load")
            loads[mode].append((time.perf_counter() - start) * 1000)
            assert len(session.messages) == load_messages
            await reader.close()
    for mode, store in stores.items():
        await store.close()
        drop(kind, where[mode])
    codec.set_writing(None)
    return {
        "append": {mode: statistics.median(v) for mode, v in times.items()},
        "append_p95": {mode: sorted(v)[int(len(v) * 0.95) - 1] for mode, v in times.items()},
        "load": {mode: statistics.median(v) for mode, v in loads.items()},
        "bytes": sizes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--stores", nargs="*", default=STORES, choices=STORES)
    args = parser.parse_args()
    os.environ[keys.ENV_KEY] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    keys.forget_loaded_keys()
    turns = corpus(400)
    raw = sum(len(codec.dumps_bytes(m.to_dict())) for t in turns[:200] for m in t)
    print("deskmate encryption and compression benchmark")
    print(
        f"machine: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average at start {os.getloadavg()}"
    )
    print(
        f"corpus: 200 turns, {raw / 1e6:.2f} MB of message JSON (questions with a 2-20 KB Python file as context, answers with a code block)"
    )
    results = {}
    moto = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in args.stores:
                if not reachable(kind):
                    print(f"({kind}: not reachable on 127.0.0.1, skipped)")
                    continue
                endpoint = None
                if kind == "s3":
                    moto = Stores(["s3"])
                    endpoint = moto.urls["s3"].split("endpoint=", 1)[1].split("&", 1)[0]
                results[kind] = asyncio.run(
                    bench(kind, Path(tmp), turns, args.rounds, args.messages, endpoint)
                )
    finally:
        if moto is not None:
            moto.close()
    print()
    print(f"Durable append of one turn, median / p95 ms ({args.rounds} rounds, modes interleaved)")
    print(f"{'store':9}" + "".join(f"{mode:>20}" for mode in MODES))
    for kind, r in results.items():
        print(f"{kind:9}" + "".join(f"{r['append'][m]:>11.3f} / {r['append_p95'][m]:<6.2f}" for m in MODES))
    print()
    print(f"Cold load of {args.messages:,} messages (a new backend), median ms of 5")
    print(f"{'store':9}" + "".join(f"{mode:>12}" for mode in MODES))
    for kind, r in results.items():
        print(f"{kind:9}" + "".join(f"{r['load'][m]:>12.1f}" for m in MODES))
    print()
    print("Stored bytes of the corpus's messages (200 turns)")
    print(f"{'store':9}" + "".join(f"{mode:>12}" for mode in MODES))
    for kind, r in results.items():
        print(f"{kind:9}" + "".join(f"{r['bytes'][m]:>12,}" for m in MODES))
    print()
    print("Targets (ratio to the same store with both off, same run):")
    for kind, r in results.items():
        a, lo, b = r["append"], r["load"], r["bytes"]
        checks = [
            ("encryption append <= 1.15x", a["encrypted"] / a["off"], 1.15),
            ("encryption cold load <= 1.3x", lo["encrypted"] / lo["off"], 1.3),
            ("compression append <= 1.2x", a["compressed"] / a["off"], 1.2),
            ("compression stored bytes <= 0.45x", b["compressed"] / b["off"], 0.45),
            ("both: stored bytes <= 0.45x", b["both"] / b["off"], 0.45),
        ]
        for name, ratio, limit in checks:
            print(f"  {kind:9} {name:36} {ratio:5.2f}x  {'MET' if ratio <= limit else 'NOT MET'}")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
