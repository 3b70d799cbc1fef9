"""The main job (`make run`): starts the platform locally, loads demo data, shows what it does,
then keeps serving until Ctrl-C (or exits at once with --once).

Today the platform is ProfileService on SQLite; each service joins here as it lands.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import grpc

from copyloop.common.config import load_or_exit
from copyloop.common.observability import configure_logging
from copyloop.common.server import serve_until_signal
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.profile.main import start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import common_pb2, profile_pb2, profile_pb2_grpc

VAR = Path(os.environ.get("COPYLOOP_VAR_DIR", "var"))
PRICE_BANDS = {v: k for k, v in common_pb2.PriceBand.items()}


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="copyloop", description=__doc__)
    parser.add_argument("--once", action="store_true", help="exit after the walkthrough")
    parser.add_argument("--shoppers", type=int, default=500, help="demo shoppers to simulate")
    parser.add_argument("--items", type=int, default=240, help="demo catalog size")
    return parser.parse_args()


def _print_profile(p: common_pb2.UserProfile) -> None:
    cats = ", ".join(f"{a.key} {a.share:.0%}" for a in p.category_affinities[:3]) or "-"
    brands = ", ".join(f"{a.key} {a.share:.0%}" for a in p.brand_affinities[:3]) or "-"
    print(f"  user {p.user_id}{'  (cold start)' if p.cold_start else ''}")
    print(f"    categories : {cats}")
    print(f"    brands     : {brands}")
    print(f"    price band : {PRICE_BANDS[p.price_band].removeprefix('PRICE_BAND_').lower()}"
          f" (mean engaged price {p.mean_engaged_price:.2f})")
    print(f"    RFM        : last seen {p.recency_days:.1f} d ago, {p.frequency_30d} events/30d, "
          f"{p.purchase_count} purchases worth {p.monetary_total:.2f}")
    print(f"    segments   : {', '.join(p.segments) or '-'}")
    print(f"    recent     : {', '.join(p.recent_item_ids[:5]) or '-'}")


async def _run(args: argparse.Namespace) -> None:
    settings = load_or_exit(ProfileSettings)
    if "COPYLOOP_PROFILE_DATABASE_URL" not in os.environ:
        settings = settings.model_copy(update={"database_url": f"sqlite:///{VAR / 'profile.db'}"})
    configure_logging(os.environ.get("COPYLOOP_LOG_LEVEL", "WARNING"))
    api_key = next(iter(settings.tenant_keys()))
    metadata = (("authorization", f"Bearer {api_key}"),)
    profile = await start_profile_service(settings)
    print(f"ProfileService  {profile.address}  (database {settings.database_url})")
    channel = grpc.aio.insecure_channel(profile.address)
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    try:
        catalog = generate_catalog(args.items)
        shoppers = make_shoppers(catalog, args.shoppers)
        events = list(generate_events(catalog, shoppers, now=time.time()))
        await load_catalog(stub, catalog, metadata)
        started = time.perf_counter()
        summary = await stream_events(stub, events, metadata)
        took = time.perf_counter() - started
        print(f"Loaded {len(catalog)} items; streamed {len(events)} events in {took:.2f}s: "
              f"{summary.accepted} accepted, {summary.duplicate} duplicate (replays of an earlier "
              f"run), {summary.rejected} rejected")
        busiest = sorted(shoppers, key=lambda s: -s.sessions)[:2]
        print("\nProfiles (maintained at ingest, read in one call):")
        for user_id in [s.user_id for s in busiest] + ["someone-new"]:
            reply = await stub.GetUserProfile(profile_pb2.GetUserProfileRequest(user_id=user_id), metadata=metadata)
            _print_profile(reply.profile)
        recall = await stub.RecallItems(profile_pb2.RecallItemsRequest(user_id=busiest[0].user_id, k=5), metadata=metadata)
        print(f"\nTop candidates for {busiest[0].user_id}:")
        for r in recall.items:
            print(f"  {r.score:.3f}  {r.item.title} ({r.item.category_path[0]}, {r.item.price:.2f}) "
                  f"[{', '.join(r.reasons) or '-'}]")
        if args.once:
            return
        print(f"\nServing. API key: {api_key}. Try: grpcurl -plaintext -H 'authorization: Bearer "
              f"{api_key}' -d '{{\"user_id\": \"{busiest[0].user_id}\"}}' {profile.address} "
              "copyloop.v1.ProfileService/GetUserProfile\nCtrl-C to stop.")
        await serve_until_signal(profile.server)
    finally:
        await channel.close()
        await profile.stop()


def main() -> None:
    asyncio.run(_run(_parse_args()))


if __name__ == "__main__":
    main()
