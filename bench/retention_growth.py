"""Database growth at a steady Recommend rate, and what retention bounds it to.

The four services run as separate processes (as deployed) on SQLite files; a client sends
up to --rate Recommend/s (n=--n; at most --concurrency in flight, so a machine that cannot keep
up runs closed-loop) for --seconds and reports every recommendation's impression (and a
click for one in ten) back through ReportOutcome, so fusion's serve log and prediction's
training log (fed by fusion's outbox) both grow as in production.

Measured: the bytes each log table holds, its indexes included (SQLite's dbstat, after a WAL
checkpoint), before and after, and its rows (fusion's outbox is transient and shown apart);
the bytes per answered Recommend, extrapolated to an hour at --rate and to the steady state
retention keeps (growth per day x --retention-days). Finally the pruning itself is timed on
the rows written (fusion.retention / prediction.retention with a cutoff after the run).

    .venv/bin/python bench/retention_growth.py [--rate 20] [--seconds 30] [--n 10]

The last line is JSON: {"fusion": {"mb_per_hour": .., ...}, "prediction": {...}, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from copyloop.common.db import make_engine
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.fusion.retention import prune_serve_log
from copyloop.platform import PlatformConfig, start_platform_processes
from copyloop.prediction.retention import prune_training_log
from copyloop.v1 import common_pb2, fusion_pb2, fusion_pb2_grpc, profile_pb2_grpc

KEY = "bench-key"
META = (("authorization", f"Bearer {KEY}"),)
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)
F = fusion_pb2
# The logs retention prunes. Fusion's outbox is transient (the relay deletes what it delivered),
# so it is shown but not counted in the growth.
TABLES = {
    "fusion": ("served", "served_requests", "outcomes"),
    "prediction": ("impressions", "outcomes"),
}
TRANSIENT = {"fusion": ("outbox",), "prediction": ()}


def used_bytes(path: Path) -> int:
    """Bytes the database holds (free pages excluded), after folding the WAL in."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def table_bytes(path: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (SQLite's dbstat)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        rows = conn.execute(
            "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
            "JOIN sqlite_master m ON d.name = m.name GROUP BY m.tbl_name"
        ).fetchall()
        return {str(name): int(size) for name, size in rows}
    finally:
        conn.close()


def row_counts(path: Path, tables: tuple[str, ...]) -> dict[str, int]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        out = {}
        for table in tables:
            try:
                out[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:  # a table this version does not have
                continue
        return out
    finally:
        conn.close()


def snapshot(var: Path) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "bytes": used_bytes(var / f"{name}.db"),
            "tables": table_bytes(var / f"{name}.db"),
            "rows": row_counts(var / f"{name}.db", t + TRANSIENT[name]),
        }
        for name, t in TABLES.items()
    }


async def drive(fusion: fusion_pb2_grpc.FusionServiceStub, args: argparse.Namespace) -> Any:
    rng = random.Random(7)
    sent = ok = failed = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        nonlocal ok, failed
        try:
            reply = await fusion.Recommend(
                F.RecommendRequest(
                    user_id=f"shopper-{rng.randrange(200):05d}", context=CTX, n=args.n
                ),
                metadata=META,
                timeout=30,
            )
            events = []
            for r in reply.recommendations:
                events.append(
                    F.OutcomeEvent(
                        event_id=f"{r.impression_id}-i",
                        request_id=reply.request_id,
                        impression_id=r.impression_id,
                        type=F.FEEDBACK_TYPE_IMPRESSION,
                    )
                )
                if rng.random() < 0.1:
                    events.append(
                        F.OutcomeEvent(
                            event_id=f"{r.impression_id}-c",
                            request_id=reply.request_id,
                            impression_id=r.impression_id,
                            type=F.FEEDBACK_TYPE_CLICK,
                        )
                    )
            if events:
                await fusion.ReportOutcome(
                    F.ReportOutcomeRequest(events=events), metadata=META, timeout=30
                )
            ok += 1
        except grpc.aio.AioRpcError:
            failed += 1

    started = time.monotonic()
    interval = 1.0 / args.rate
    while time.monotonic() - started < args.seconds:
        if len(pending) >= args.concurrency:  # the machine cannot keep up: closed loop
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            continue
        task = asyncio.ensure_future(one(sent))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
        await asyncio.sleep(max(0.0, started + sent * interval - time.monotonic()))
    await asyncio.gather(*pending)
    return sent, ok, failed, time.monotonic() - started


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    var = Path(args.var_dir or tempfile.mkdtemp(prefix="copyloop-growth-"))
    os.environ.setdefault("COPYLOOP_FUSION_OUTBOX_POLL_S", "0.2")
    base = args.base_port or random.randrange(20000, 40000)
    platform = start_platform_processes(
        PlatformConfig(var_dir=var, api_keys=f"{KEY}:bench", embedder="hashing"), base
    )
    try:
        addresses = platform.addresses()
        catalog = generate_catalog(200)
        async with grpc.aio.insecure_channel(addresses["profile"]) as channel:
            profile = profile_pb2_grpc.ProfileServiceStub(channel)
            await load_catalog(profile, catalog, META)
            shoppers = make_shoppers(catalog, 200)
            await stream_events(profile, generate_events(catalog, shoppers, now=time.time()), META)
        async with grpc.aio.insecure_channel(addresses["fusion"]) as channel:
            fusion = fusion_pb2_grpc.FusionServiceStub(channel)
            await fusion.Recommend(
                F.RecommendRequest(user_id="warm", context=CTX, n=args.n), metadata=META
            )
            before = snapshot(var)
            sent, ok, failed, elapsed = await drive(fusion, args)
        await asyncio.sleep(args.settle)  # the outbox relay forwards what was reported
        after = snapshot(var)
    finally:
        platform.stop()
    result: dict[str, Any] = {
        "rate": round(sent / elapsed, 1),
        "recommends": sent,
        "ok": ok,
        "failed": failed,
        "seconds": round(elapsed, 1),
        "retention_days": args.retention_days,
        "target_rate": args.rate,
    }
    # Extrapolated to --rate from the bytes each answered Recommend (and its feedback) adds,
    # whatever rate this machine reached.
    for name, logs in TABLES.items():
        by_table = {
            t: after[name]["tables"].get(t, 0) - before[name]["tables"].get(t, 0)
            for t in logs + TRANSIENT[name]
        }
        grown = sum(by_table[t] for t in logs)
        per_recommend = grown / max(1, ok)
        per_hour = per_recommend * args.rate * 3600
        rows = {
            t: after[name]["rows"].get(t, 0) - before[name]["rows"].get(t, 0)
            for t in after[name]["rows"]
        }
        result[name] = {
            "mb_grown": round(grown / 1e6, 2),
            "mb_grown_by_table": {t: round(b / 1e6, 2) for t, b in by_table.items()},
            "mb_grown_file": round((after[name]["bytes"] - before[name]["bytes"]) / 1e6, 2),
            "mb_per_hour": round(per_hour / 1e6, 1),
            "rows_grown": rows,
            "bytes_per_recommend": round(per_recommend),
            "gb_steady_state": round(per_hour * 24 * args.retention_days / 1e9, 2),
        }
    # Pruning what was written: everything is older than a cutoff just after the run.
    for name, prune in (("fusion", prune_serve_log), ("prediction", prune_training_log)):
        engine = make_engine(f"sqlite:///{var / f'{name}.db'}")
        started = time.perf_counter()
        pruned = prune(engine, time.time() + 1, 1000)
        took = time.perf_counter() - started
        engine.dispose()
        result[name]["pruned_rows"] = pruned
        result[name]["prune_rows_per_s"] = round(sum(pruned.values()) / max(took, 1e-6))
        result[name]["rows_left"] = row_counts(var / f"{name}.db", TABLES[name])
    return result


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['recommends']} Recommend in {r['seconds']} s ({r['rate']}/s reached; "
        f"{r['failed']} failed), each with its impressions (and 10% clicks) reported; "
        f"MB/hour and the steady state extrapolated to {r['target_rate']}/s"
    )
    print(
        f"  {'database':<11} {'grown MB':>9} {'MB/hour':>8} {'B/recommend':>12} "
        f"{'steady GB @' + str(r['retention_days']) + 'd':>16} {'prune rows/s':>13}"
    )
    for name in TABLES:
        d = r[name]
        print(
            f"  {name:<11} {d['mb_grown']:>9} {d['mb_per_hour']:>8} {d['bytes_per_recommend']:>12} "
            f"{d['gb_steady_state']:>16} {d['prune_rows_per_s']:>13}"
        )
        print(f"    MB grown by table {d['mb_grown_by_table']} (whole file {d['mb_grown_file']})")
        print(f"    rows grown {d['rows_grown']}; pruned {d['pruned_rows']}; left {d['rows_left']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at most")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds for the relay")
    parser.add_argument("--retention-days", type=float, default=30.0)
    parser.add_argument("--base-port", type=int, default=0)
    parser.add_argument("--var-dir", default="")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
