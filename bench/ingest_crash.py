"""ProfileService crash durability: SIGKILL the service process K times while a client ingests
N events, restart it on the same database, and check that no acknowledged event was lost and
none was applied twice.

    .venv/bin/python bench/ingest_crash.py [--events 20000] [--kills 2] [--backend sqlite]
    .venv/bin/python bench/ingest_crash.py --backend postgresql

The service runs as its own process (`python -m copyloop.profile.main`, as deployed) on a fresh
SQLite file, or with `--backend postgresql` on a fresh database created (and dropped after) on
--postgres-admin-url. A catalog is upserted first (events must name known items). Workers send
the events in IngestEvents batches with unique event ids (a view / click / purchase mix with
known quantity and price) and retry each batch, same ids, until it is acknowledged (accepted +
duplicate == batch size, nothing rejected); the service dedupes by event id, so a batch that
was committed just before a kill comes back as duplicates. Meanwhile the bench kills the
process with SIGKILL at random moments (after a random share of the events were acknowledged,
plus a few random milliseconds, so a batch is usually in flight) and starts it again.

At the end it checks (read-only SQLAlchemy on the database, GetUserProfile on the service):
  - events table against the acknowledged ids: missing = lost, a row twice = doubled;
  - every user's profile (event_count, purchase_count, monetary_total; GetUserProfile and the
    profiles table) and every item's item_stats.purchase_count against the sums of the events
    actually stored: an excess is a double application, a deficit an event stored but never
    applied (a broken transaction); and, as a cross-check, against the client-side sums.
Prices are multiples of 0.25 and quantities small, so monetary sums compare exactly. A process
that exits on its own is restarted and counted ("exits the bench did not cause"). A retried
batch answered all-duplicate was committed before the kill but never acknowledged: the case
dedup by event id exists for (random kills seldom land in that window). The last line is JSON:
{"backend": ..., "events": N, "kills": K, "lost": .., "double_applied": .., "seconds": ..}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import sqlalchemy as sa

from copyloop.common.protoconv import epoch_to_ts
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog
from copyloop.v1 import profile_pb2, profile_pb2_grpc

KEY = "bench-key"
TENANT = "bench"
META = (("authorization", f"Bearer {KEY}"),)
# Retrying these could never succeed: the bench itself would be wrong.
FATAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
}
MIX = (
    (profile_pb2.EVENT_TYPE_VIEW, 0.6),
    (profile_pb2.EVENT_TYPE_CLICK, 0.25),
    (profile_pb2.EVENT_TYPE_PURCHASE, 0.15),
)


@dataclass
class Planned:
    """The events to send, and what the service's derived state must add up to."""

    batches: list[list[profile_pb2.Event]]
    users: dict[str, list[float]]  # user -> [event_count, purchase_count, monetary_total]
    item_purchases: Counter[str]


def plan_events(n: int, batch: int, item_ids: list[str], seed: int) -> Planned:
    """Unique ids; prices are multiples of 0.25 and quantities small integers, so every
    monetary sum is exact in binary floating point and can be compared with ==."""
    rng = random.Random(seed)
    users_n = max(10, n // 50)
    now = time.time()
    events: list[profile_pb2.Event] = []
    users: dict[str, list[float]] = {}
    purchases: Counter[str] = Counter()
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    for i in range(n):
        user = f"crash-user-{rng.randrange(users_n):05d}"
        item = rng.choice(item_ids)
        kind = rng.choices(kinds, weights)[0]
        quantity = rng.randint(1, 3) if kind == profile_pb2.EVENT_TYPE_PURCHASE else 1
        price = rng.randint(4, 400) * 0.25
        events.append(
            profile_pb2.Event(
                event_id=f"crash-{seed}-{i:07d}",
                user_id=user,
                type=kind,
                item_id=item,
                event_time=epoch_to_ts(now - rng.uniform(0, 3 * 86_400)),
                quantity=quantity,
                price=price,
            )
        )
        sums = users.setdefault(user, [0, 0, 0.0])
        sums[0] += 1
        if kind == profile_pb2.EVENT_TYPE_PURCHASE:
            sums[1] += 1
            sums[2] += price * quantity
            purchases[item] += 1
    return Planned([events[i : i + batch] for i in range(0, n, batch)], users, purchases)


@dataclass
class Service:
    """The profile process of the moment; replaced on every restart."""

    env: dict[str, str]
    log: IO[str]
    proc: subprocess.Popen[str] | None = None
    channel: grpc.aio.Channel | None = None
    stub: profile_pb2_grpc.ProfileServiceStub | None = None
    generation: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)
    old_channels: list[grpc.aio.Channel] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one kill / restart at a time
    crashes: int = 0  # exits the bench did not cause

    async def restart_if_dead(self) -> None:
        """Restarts a process that exited on its own (a crash is a finding, not a stall)."""
        async with self.lock:
            if self.proc is not None and self.proc.poll() is not None:
                self.up.clear()
                if self.channel is not None:
                    self.old_channels.append(self.channel)
                self.crashes += 1
                await self.start()

    async def start(self) -> float:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "copyloop.profile.main"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = await asyncio.to_thread(self.proc.stdout.readline)  # type: ignore[union-attr]
        if "listening on" not in line:
            raise RuntimeError(
                f"profile did not start (rc {self.proc.poll()}): see {self.log.name}"
            )
        address = line.rsplit(" ", 1)[1].strip()
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = profile_pb2_grpc.ProfileServiceStub(self.channel)
        self.generation += 1
        self.up.set()
        return time.perf_counter() - started

    async def kill(self) -> None:
        """SIGKILL: no drain, no shutdown hook; whatever was not committed is gone."""
        assert self.proc is not None
        self.up.clear()
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 30)
        # The old channel stays open until the end: closing it would cancel the calls still
        # on it (CancelledError in the worker) instead of letting them fail as a client of a
        # dead server sees it (UNAVAILABLE).
        if self.channel is not None:
            self.old_channels.append(self.channel)

    async def stop(self) -> None:
        for channel in [*self.old_channels, self.channel]:
            if channel is not None:
                await channel.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Progress:
    acked_events: int = 0
    acked_ids: set[str] = field(default_factory=set)
    in_flight: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    found_committed: int = 0  # retried batches the service had already applied (all duplicate)
    partial: list[str] = field(default_factory=list)  # batches half applied: atomicity broken
    kills: list[dict[str, Any]] = field(default_factory=list)


async def send_all(
    service: Service, batches: list[list[profile_pb2.Event]], progress: Progress, workers: int
) -> None:
    queue: asyncio.Queue[list[profile_pb2.Event]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            request = profile_pb2.IngestEventsRequest(events=batch)
            attempt = 0
            while True:
                await service.up.wait()
                stub = service.stub
                assert stub is not None
                progress.in_flight += 1
                try:
                    reply = await stub.IngestEvents(request, metadata=META, timeout=60)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() in FATAL:
                        raise
                    progress.retries[exc.code().name] += 1
                    attempt += 1
                    await service.restart_if_dead()
                    await asyncio.sleep(min(0.5, 0.02 * attempt))
                    continue
                finally:
                    progress.in_flight -= 1
                s = reply.summary
                if s.rejected or s.accepted + s.duplicate != len(batch):
                    raise RuntimeError(f"batch {batch[0].event_id} not acknowledged whole: {s}")
                if attempt and s.duplicate == len(batch):
                    progress.found_committed += 1
                elif s.duplicate and s.accepted:
                    progress.partial.append(
                        f"{batch[0].event_id}: {s.accepted} accepted, {s.duplicate} duplicate"
                    )
                progress.acked_events += len(batch)
                progress.acked_ids.update(e.event_id for e in batch)
                break

    await asyncio.gather(*(worker() for _ in range(workers)))


async def killer(
    service: Service, total: int, kills: int, progress: Progress, rng: random.Random
) -> None:
    """Kills after a random share (10 % to 90 %) of the events were acknowledged, a few
    random milliseconds later so that a batch is usually being written."""
    for share in sorted(rng.uniform(0.1, 0.9) for _ in range(kills)):
        while progress.acked_events < share * total:
            await asyncio.sleep(0.002)
        await asyncio.sleep(rng.uniform(0, 0.03))
        in_flight = progress.in_flight
        acked = progress.acked_events
        async with service.lock:
            await service.kill()
            restart_s = await service.start()
        progress.kills.append({"acked": acked, "in_flight": in_flight, "restart_s": restart_s})


def read_only_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    return sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


Sums = dict[str, list[float]]  # key -> [event_count, purchase_count, monetary_total]


def check_database(url: str, acked: set[str]) -> dict[str, Any]:
    """What the database holds: event rows against the acknowledged ids, per-user sums of the
    stored events (what each profile must equal), and the stored derived counters."""
    engine = read_only_engine(url)
    stored: Counter[str] = Counter()
    by_user: Sums = {}
    item_from_events: Counter[str] = Counter()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT event_id, user_id, type, item_id, quantity, price FROM events"
                    " WHERE tenant_id = :t"
                ),
                {"t": TENANT},
            )
            for r in rows:
                stored[r.event_id] += 1
                sums = by_user.setdefault(r.user_id, [0, 0, 0.0])
                sums[0] += 1
                if r.type == "purchase":
                    sums[1] += 1
                    sums[2] += r.price * max(1, r.quantity)
                    item_from_events[r.item_id] += 1
            item_stats = {
                r.item_id: r.purchase_count
                for r in conn.execute(
                    sa.text("SELECT item_id, purchase_count FROM item_stats WHERE tenant_id = :t"),
                    {"t": TENANT},
                )
            }
            profile_rows = {
                r.user_id: r.event_count
                for r in conn.execute(
                    sa.text("SELECT user_id, event_count FROM profiles WHERE tenant_id = :t"),
                    {"t": TENANT},
                )
            }
    finally:
        engine.dispose()
    return {
        "rows": sum(stored.values()),
        "distinct": len(stored),
        "missing": len(acked - stored.keys()),
        "repeated_rows": sum(n - 1 for n in stored.values() if n > 1),
        "unexpected": len(stored.keys() - acked),
        "by_user": by_user,
        "item_from_events": item_from_events,
        "item_stats": item_stats,
        "profile_rows": profile_rows,
    }


async def read_profiles(service: Service, users: list[str]) -> Sums:
    """Every user's derived counters as the service serves them (GetUserProfile)."""
    stub = service.stub
    assert stub is not None
    got: Sums = {}
    sem = asyncio.Semaphore(16)

    async def one(user: str) -> None:
        async with sem:
            reply = await stub.GetUserProfile(
                profile_pb2.GetUserProfileRequest(user_id=user), metadata=META, timeout=30
            )
        p = reply.profile
        got[user] = [p.event_count, p.purchase_count, p.monetary_total]

    await asyncio.gather(*(one(u) for u in users))
    return got


@dataclass
class Diff:
    """Derived state against a reference: excess = applied twice, deficit = not applied."""

    events_excess: int = 0
    events_deficit: int = 0
    purchase_excess: int = 0
    purchase_deficit: int = 0
    money_off: list[str] = field(default_factory=list)


def compare(got: Sums, want: Sums) -> Diff:
    d = Diff()
    for key in got.keys() | want.keys():
        g, w = got.get(key, [0, 0, 0.0]), want.get(key, [0, 0, 0.0])
        d.events_excess += max(0, int(g[0] - w[0]))
        d.events_deficit += max(0, int(w[0] - g[0]))
        d.purchase_excess += max(0, int(g[1] - w[1]))
        d.purchase_deficit += max(0, int(w[1] - g[1]))
        if g[2] != w[2]:  # exact: every price is a multiple of 0.25
            d.money_off.append(f"{key}: monetary_total {g[2]} != {w[2]}")
    return d


def compare_counts(got: dict[str, int], want: Counter[str]) -> tuple[int, int]:
    keys = got.keys() | want.keys()
    excess = sum(max(0, got.get(k, 0) - want.get(k, 0)) for k in keys)
    return excess, sum(max(0, want.get(k, 0) - got.get(k, 0)) for k in keys)


async def bench(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "COPYLOOP_PROFILE_PORT": "0",
        "COPYLOOP_PROFILE_DATABASE_URL": url,
        "COPYLOOP_API_KEYS": f"{KEY}:{TENANT}",
        "COPYLOOP_PROFILE_METRICS_PORT": "-1",
        "COPYLOOP_PROFILE_SHUTDOWN_GRACE_S": "5",
    }
    rng = random.Random(args.seed)
    catalog = generate_catalog(args.items)
    planned = plan_events(args.events, args.batch, [i.item_id for i in catalog], args.seed)
    with open(tmp / "profile.log", "w") as log:
        service = Service(env, log)
        await service.start()
        progress = Progress()
        try:
            assert service.stub is not None
            await load_catalog(service.stub, catalog, META)
            started = time.perf_counter()
            await asyncio.gather(
                send_all(service, planned.batches, progress, args.workers),
                killer(service, args.events, args.kills, progress, rng),
            )
            seconds = time.perf_counter() - started
            served = await read_profiles(service, sorted(planned.users))
        finally:
            await service.stop()
    db = check_database(url, progress.acked_ids)
    rows = {u: [n, 0, 0.0] for u, n in db["profile_rows"].items()}
    stored_counts = {u: [s[0], 0, 0.0] for u, s in db["by_user"].items()}
    return {
        "progress": progress,
        "db": db,
        "vs_stored": compare(served, db["by_user"]),
        "vs_sent": compare(served, planned.users),
        "rows_vs_stored": compare(rows, stored_counts),
        "items_vs_stored": compare_counts(db["item_stats"], db["item_from_events"]),
        "items_vs_sent": compare_counts(db["item_stats"], planned.item_purchases),
        "seconds": seconds,
        "crashes": service.crashes,
        "log": tmp / "profile.log",
    }


def report(args: argparse.Namespace, r: dict[str, Any]) -> dict[str, Any]:
    progress: Progress = r["progress"]
    db = r["db"]
    stored: Diff = r["vs_stored"]
    sent: Diff = r["vs_sent"]
    rows: Diff = r["rows_vs_stored"]
    items_excess, items_deficit = r["items_vs_stored"]
    # Lost: acknowledged but not stored, or stored but never folded into the profile.
    lost = db["missing"] + max(stored.events_deficit, rows.events_deficit, items_deficit)
    # Doubled: a row twice, or a profile / item counter beyond the events stored.
    doubled = db["repeated_rows"] + max(
        stored.events_excess, stored.purchase_excess, rows.events_excess, items_excess
    )
    print(
        f"\nProfileService on {args.backend}: {args.events} events in batches of {args.batch}, "
        f"{args.workers} workers, {len(progress.kills)} SIGKILLs, {r['seconds']:.1f} s"
    )
    for n, k in enumerate(progress.kills, 1):
        print(
            f"  kill {n}: after {k['acked']} acknowledged events, {k['in_flight']} calls in "
            f"flight; restarted in {k['restart_s']:.2f} s"
        )
    retries = ", ".join(f"{c} {code}" for code, c in progress.retries.most_common()) or "none"
    table: list[tuple[str, object, str]] = [
        ("acknowledged events", progress.acked_events, ""),
        ("events rows / distinct ids", f"{db['rows']} / {db['distinct']}", "events table"),
        ("acknowledged, missing from events", db["missing"], "lost"),
        ("rows stored twice", db["repeated_rows"], "doubled"),
        ("stored but never acknowledged", db["unexpected"], ""),
        ("profile events vs stored: excess / deficit", _pair(stored, "events"), "GetUserProfile"),
        ("profile purchases vs stored: excess / deficit", _pair(stored, "purchase"), ""),
        ("profile monetary_total off vs stored", len(stored.money_off), "users, exact sums"),
        ("profiles.event_count vs stored: exc / def", _pair(rows, "events"), "profiles table"),
        ("item purchase_count vs stored: exc / def", f"{items_excess} / {items_deficit}", ""),
        ("profile events vs sent: excess / deficit", _pair(sent, "events"), "client-side sums"),
        ("profile monetary_total off vs sent", len(sent.money_off), "users"),
        ("item purchase_count vs sent: exc / def", "{} / {}".format(*r["items_vs_sent"]), ""),
        ("retried calls", sum(progress.retries.values()), retries),
        ("retried batches already committed", progress.found_committed, "deduped on retry"),
        ("batches half applied", len(progress.partial), "atomicity"),
        ("exits the bench did not cause", r["crashes"], "restarted"),
    ]
    width = max(len(name) for name, _, _ in table)
    print(f"  {'check'.ljust(width)}  {'value':>14}  note")
    for name, value, note in table:
        print(f"  {name.ljust(width)}  {value!s:>14}  {note}")
    for line in stored.money_off[:5] + progress.partial[:5]:
        print(f"  ! {line}")
    print(f"  lost = {lost}, double applied = {doubled}  (service log: {r['log']})")
    return {
        "backend": args.backend,
        "events": args.events,
        "kills": len(progress.kills),
        "lost": lost,
        "double_applied": doubled,
        "monetary_mismatches": len(stored.money_off) + len(sent.money_off),
        "partial_batches": len(progress.partial),
        "retried_already_committed": progress.found_committed,
        "crashes": r["crashes"],
        "seconds": round(r["seconds"], 2),
    }


def _pair(d: Diff, name: str) -> str:
    return f"{getattr(d, f'{name}_excess')} / {getattr(d, f'{name}_deficit')}"


def create_pg_database(admin_url: str) -> tuple[str, str]:
    """A fresh database per run, so the bench never reads another run's events."""
    name = f"ingest_crash_{os.getpid()}"
    engine = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}", name


def drop_pg_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--batch", type=int, default=250, help="events per IngestEvents call")
    parser.add_argument("--workers", type=int, default=2, help="concurrent client calls")
    parser.add_argument("--items", type=int, default=120, help="catalog size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where the bench creates (and drops) its database",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="copyloop-ingest-crash-"))
    pg_name = ""
    if args.backend == "postgresql":
        url, pg_name = create_pg_database(args.postgres_admin_url)
    else:
        url = f"sqlite:///{tmp / 'profile.db'}"
    try:
        result = asyncio.run(bench(args, url, tmp))
    finally:
        if pg_name:
            drop_pg_database(args.postgres_admin_url, pg_name)
    summary = report(args, result)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
