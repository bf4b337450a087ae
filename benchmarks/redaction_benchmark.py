"""Secret redaction: its cost on a 100 KB context and its false positives on ordinary code.

    .venv/bin/python benchmarks/redaction_benchmark.py [--corpus DIR ...]

Prints, in one run: the time ``redact_question`` adds to an ask with a 100 KB context of
code (with the RE2 prefilter and without it), the same context with secrets planted in it,
detect-secrets' own line-by-line scanner on the same text for comparison, and how many
strings each flags in ordinary code (the corpus: deskmate's sources and every installed
package's Python files by default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))

from deskmate.engine import redaction  # noqa: E402
from deskmate.engine.redaction import Redaction, redact, redact_question  # noqa: E402

PLANTED = (
    "\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nDATABASE_URL=postgresql://app:hunter2-horse@db/app\n"
    "token = 'ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2 + "'\n"
)


def timed(function, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def code_files(roots: list[Path]) -> list[Path]:
    files = []
    for root in roots:
        for pattern in ("**/*.py", "**/*.ts", "**/*.lua"):
            files += [
                p
                for p in sorted(root.glob(pattern))
                if p.name != "redaction.py" and "node_modules" not in p.parts
            ]
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", nargs="*", type=Path, help="folders of ordinary code (default: repo + site-packages)"
    )
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    corpus = args.corpus or [REPO / "server", REPO / "clients", Path(sysconfig.get_paths()["purelib"])]
    files = code_files(corpus)
    context_text = "".join(
        p.read_text(errors="replace") for p in code_files([REPO / "server", REPO / "clients"])
    )
    context_text = context_text[:100_000]
    context = {"uri": "file:///project/big.py", "languageId": "python", "text": context_text}
    planted = {**context, "text": context_text[: 100_000 - len(PLANTED)] + PLANTED}

    print("deskmate secret-redaction benchmark")
    print(f"machine: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average {os.getloadavg()}")
    start = time.perf_counter()
    redact("warm up", Redaction())
    print(
        f"first use (imports detect-secrets' plugins, compiles the patterns and the RE2 set): "
        f"{(time.perf_counter() - start) * 1000:.1f} ms, once per process"
    )
    print()
    print(
        f"Added to an ask with a {len(context_text) // 1000} KB context, ms: median / best of {args.rounds}"
    )
    rows = [
        ("redact_question, code only", lambda: redact_question("What does this do?", context)),
        ("redact_question, 3 secrets planted", lambda: redact_question("What does this do?", planted)),
    ]
    results = [(name, *timed(fn, args.rounds)) for name, fn in rows]
    prefilter = redaction._prefilter
    redaction._prefilter = lambda: None
    try:
        results.append(
            ("  the same without the RE2 prefilter", *timed(lambda: redact_question("q", context), 50))
        )
    finally:
        redaction._prefilter = prefilter
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings

        def detect_secrets_scan() -> None:
            with default_settings():
                for line in context_text.splitlines():
                    list(scan_line(line))

        results.append(("detect-secrets scan_line, every plugin", *timed(detect_secrets_scan, 3)))
    except ImportError:
        pass
    for name, median, best in results:
        print(f"{name:42} {median:8.3f} / {best:.3f}")

    print()
    total = sum(p.stat().st_size for p in files)
    found = Counter()
    flagged: list[str] = []
    for path in files:
        text = path.read_text(errors="replace")
        counts = Redaction()
        redact(text, counts)
        if counts:
            found.update(counts.counts)
            flagged.append(f"  {path}: {dict(counts.counts)}")
    print(
        f"False positives on ordinary code: {len(files):,} files, {total / 1e6:.1f} MB "
        f"({', '.join(str(c) for c in corpus)})"
    )
    print(f"strings redacted: {sum(found.values())} in {len(flagged)} files: {dict(found)}")
    print("\n".join(flagged[:40]))
    median = results[0][1]
    print()
    print(
        f"Target: redaction adds at most 1 ms to an ask with a 100 KB context: "
        f"{median:.3f} ms median, {'MET' if median <= 1 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
