"""ProfileService benchmark: event ingest rate (client stream and unary batches) into SQLite
(or --database-url), and GetUserProfile p50/p99 at a given concurrency, over real gRPC.

    .venv/bin/python bench/profile_ingest.py [--events 100000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import event_to_proto, load_catalog
from copyloop.demo.shoppers import DemoEvent, generate_events, make_shoppers
from copyloop.profile.main import start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import profile_pb2, profile_pb2_grpc

KEY = "bench-key"
META = (("authorization", f"Bearer {KEY}"),)


def make_events(n: int, prefix: str) -> list[DemoEvent]:
    catalog = generate_catalog(240)
    shoppers = make_shoppers(catalog, max(10, n // 30), seed=5)
    out: list[DemoEvent] = []
    now = time.time()
    seed = 1
    while len(out) < n:
        for ev in generate_events(catalog, shoppers, now, seed=seed):
            out.append(
                DemoEvent(
                    f"{prefix}-{len(out)}",
                    ev.user_id,
                    ev.type,
                    ev.item_id,
                    ev.event_time,
                    ev.quantity,
                    ev.price,
                    ev.query,
                )
            )
            if len(out) == n:
                break
        seed += 1
    return out


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        service = await start_profile_service(
            ProfileSettings(port=0, database_url=url, api_keys=f"{KEY}:bench")
        )
        channel = grpc.aio.insecure_channel(
            service.address, options=[("grpc.max_send_message_length", 64 << 20)]
        )
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        await load_catalog(stub, generate_catalog(240), META)
        rows = []

        events = [event_to_proto(e) for e in make_events(args.events, "s")]
        started = time.perf_counter()

        async def chunks():
            for i in range(0, len(events), args.chunk):
                yield profile_pb2.IngestEventStreamRequest(events=events[i : i + args.chunk])

        reply = await stub.IngestEventStream(chunks(), metadata=META)
        took = time.perf_counter() - started
        assert reply.summary.accepted == len(events), reply.summary
        rows.append(
            (
                "IngestEventStream (client stream)",
                f"{len(events) / took:,.0f} events/s",
                f"{len(events)} events in {took:.2f}s, chunks of {args.chunk}",
            )
        )

        events = [event_to_proto(e) for e in make_events(args.events, "b")]
        started = time.perf_counter()
        for i in range(0, len(events), args.batch):
            r = await stub.IngestEvents(
                profile_pb2.IngestEventsRequest(events=events[i : i + args.batch]), metadata=META
            )
            assert r.summary.rejected == 0
        took = time.perf_counter() - started
        rows.append(
            (
                "IngestEvents (unary batches)",
                f"{len(events) / took:,.0f} events/s",
                f"{len(events)} events in {took:.2f}s, batches of {args.batch}",
            )
        )

        started = time.perf_counter()
        replay = await stub.IngestEvents(
            profile_pb2.IngestEventsRequest(events=events[: args.batch]), metadata=META
        )
        took = time.perf_counter() - started
        assert replay.summary.duplicate == args.batch
        rows.append(
            ("IngestEvents replay (all duplicates)", f"{args.batch / took:,.0f} events/s", "")
        )

        users = sorted({e.user_id for e in events})
        latencies: list[float] = []
        deadline = time.perf_counter() + args.seconds

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await stub.GetUserProfile(
                    profile_pb2.GetUserProfileRequest(user_id=users[i % len(users)]), metadata=META
                )
                latencies.append(time.perf_counter() - t0)
                i += args.concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
        took = time.perf_counter() - started
        q = statistics.quantiles(latencies, n=100)
        rows.append(
            (
                f"GetUserProfile, concurrency {args.concurrency}",
                f"p50 {q[49] * 1000:.2f} ms / p99 {q[98] * 1000:.2f} ms",
                f"{len(latencies)} calls, {len(latencies) / took:,.0f} calls/s",
            )
        )
        await channel.close()
        await service.stop(0)

    width = max(len(r[0]) for r in rows)
    print(f"\nProfileService on {url.split(':')[0]}  ({args.events} events per ingest run)")
    print(f"{'measure'.ljust(width)}  {'result':<32} detail")
    for name, result, detail in rows:
        print(f"{name.ljust(width)}  {result:<32} {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000, help="events per stream message")
    parser.add_argument("--batch", type=int, default=5000, help="events per unary call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="GetUserProfile run time")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
