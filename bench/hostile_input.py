"""Hostile input: a fixed-seed batch of fuzzed requests per RPC of all four services, on SQLite
and on PostgreSQL, counted by status. Anything but the documented statuses (INTERNAL, UNKNOWN,
UNAVAILABLE without an outage, a client deadline) is a bug, and so is a server that stops
answering its health check or a reply that carries another tenant's data.

    .venv/bin/python bench/hostile_input.py [--per-rpc 48] [--seed 1] [--backends sqlite,postgresql]

The last line is JSON: {"sqlite": {"Rpc": {"STATUS": n, ...}}, "postgresql": {...}}.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* (the shared fuzzer)

from tests.conftest import (
    POSTGRES_ADMIN_URL,
    _ensure_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from tests.integration.hostile.fuzz import (
    ACCEPTABLE,
    MARKER,
    Target,
    all_rpcs,
    hostile_request,
)

SERVICES = ("profile", "generation", "prediction", "fusion")


def run_backend(backend: str, per_rpc: int, seed: int, only: str) -> dict[str, Counter[str]]:
    created: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls: dict[str, str] = {}
        if backend == "postgresql":
            _ensure_postgres(POSTGRES_ADMIN_URL)
            for service in SERVICES:
                url, name = create_postgres_database(POSTGRES_ADMIN_URL)
                urls[service] = url
                created.append(name)
        target = Target(Path(tmp), urls)
        counts: dict[str, Counter[str]] = {}
        try:
            target.seed()
            before = target.victim_snapshot()
            for rpc in all_rpcs():
                if only and only not in rpc:
                    continue
                r = random.Random(f"{seed}:{rpc}")
                tally: Counter[str] = Counter()
                for _ in range(per_rpc):
                    result = target.call(rpc, hostile_request(rpc, r, target.pools))
                    tally[result.code.name] += 1
                    if MARKER.encode() in result.reply:
                        tally["LEAK"] += 1
                if not target.healthy():
                    tally["UNHEALTHY_AFTER"] += 1
                counts[rpc] = tally
            if target.victim_snapshot() != before:
                counts.setdefault("victim", Counter())["CHANGED"] += 1
        finally:
            target.close()
            for name in created:
                drop_postgres_database(POSTGRES_ADMIN_URL, name)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-rpc", type=int, default=48)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--only", default="", help="only RPCs whose name contains this")
    parser.add_argument("--show-errors", action="store_true", help="the services' error log")
    args = parser.parse_args()
    if args.show_errors:
        logging.basicConfig(level=logging.ERROR)
        logging.getLogger("copyloop.access").disabled = True
    else:
        logging.disable(logging.CRITICAL)  # the services log every rejected request
    results: dict[str, dict[str, dict[str, int]]] = {}
    for backend in args.backends.split(","):
        started = time.monotonic()
        counts = run_backend(backend, args.per_rpc, args.seed, args.only)
        elapsed = time.monotonic() - started
        codes = sorted({c for tally in counts.values() for c in tally})
        print(f"\n{backend}: {args.per_rpc} requests per RPC, seed {args.seed}, {elapsed:.0f} s")
        print(f"{'rpc':34}" + "".join(f"{c[:12]:>13}" for c in codes))
        for rpc, tally in counts.items():
            print(f"{rpc:34}" + "".join(f"{tally.get(c, 0):>13}" for c in codes))
        bad = {
            rpc: {c: n for c, n in tally.items() if c not in {s.name for s in ACCEPTABLE}}
            for rpc, tally in counts.items()
        }
        bad_total = sum(sum(b.values()) for b in bad.values())
        print(f"{backend}: {bad_total} unacceptable answers (or leaks / health failures)")
        results[backend] = {rpc: dict(tally) for rpc, tally in counts.items()}
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
