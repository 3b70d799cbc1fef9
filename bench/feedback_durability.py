"""Outcome loss across downstream outages and a fusion restart, and serve-log bytes per row.

    PYTHONPATH=. python bench/feedback_durability.py [--outage-s 30] [--users 100] [--n 10]

1. Loss: Recommend for USERS users (N items each), then prediction and profile go down for
   OUTAGE_S seconds while impressions, clicks and purchases are reported (fusion is restarted
   on its own database half-way through, and a client retries its first batch); then both come
   back. Counts what reached prediction's training log and the profile, exactly once.
2. Bytes: the serve log's feature JSON per served row, as stored now (request-level part once
   per request in served_requests) against what storing the whole snapshot on every row took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, select
from tests.integration.fusion.loop import (
    F,
    follow_up,
    recommend,
    report,
    restart_fusion,
    restart_prediction,
    restart_profile,
    start_loop,
    wait_drained,
)

from copyloop.fusion import schema as fusion_schema
from copyloop.prediction import schema as prediction_schema
from copyloop.profile import schema as profile_schema


def _rows(url: str, query: object) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))  # type: ignore[call-overload]
    finally:
        engine.dispose()


async def main(outage_s: float, users: int, n: int) -> None:
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        platform = await start_loop(var, shoppers=max(users, 12))
        try:
            shown = await recommend(platform, [f"shopper-{u:05d}" for u in range(users)], n=n)
            clicks = [
                follow_up(e, F.FEEDBACK_TYPE_CLICK, "click") for e in shown if rng.random() < 0.3
            ]
            buys = [
                follow_up(e, F.FEEDBACK_TYPE_PURCHASE, "purchase", 25.0)
                for e in shown
                if rng.random() < 0.1
            ]
            everything = shown + clicks + buys
            rng.shuffle(everything)
            half = len(everything) // 2

            started = time.monotonic()
            await platform.prediction.stop(0)
            await platform.profile.stop(0)
            for chunk in range(0, half, 200):
                await report(platform, everything[chunk : min(chunk + 200, half)])
            await restart_fusion(platform)  # in the middle of the outage
            for chunk in range(half, len(everything), 200):
                await report(platform, everything[chunk : chunk + 200])
            retry = await report(platform, everything[:200])  # a client retry
            await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - started)))
            await restart_prediction(platform)
            await restart_profile(platform)
            back = time.monotonic()
            await wait_drained(platform, deadline_s=300)
            drained_s = time.monotonic() - back

            url = {s: f"sqlite:///{var / f'{s}.db'}" for s in ("prediction", "profile", "fusion")}
            logged = {
                r.impression_id  # type: ignore[attr-defined]
                for r in _rows(url["prediction"], select(prediction_schema.impressions))
            }
            outcomes = {
                r.outcome_id  # type: ignore[attr-defined]
                for r in _rows(url["prediction"], select(prediction_schema.outcomes))
            }
            events = {
                r.event_id  # type: ignore[attr-defined]
                for r in _rows(url["profile"], select(profile_schema.events.c.event_id))
            }
            want_imps = {e.impression_id for e in shown}
            want_outs = {e.event_id for e in clicks + buys}
            want_events = {f"fusion:{e.event_id}" for e in everything}
            print(f"reported during a {outage_s:.0f} s outage of prediction and profile, fusion")
            print(f"restarted half-way: {len(shown)} impressions, {len(clicks)} clicks,")
            print(f"{len(buys)} purchases; client retry: {retry.duplicate} duplicates")
            print(f"  training log impressions: {len(want_imps & logged)}/{len(want_imps)}")
            print(f"  training log outcomes:    {len(want_outs & outcomes)}/{len(want_outs)}")
            print(f"  profile events:           {len(want_events & events)}/{len(want_events)}")
            lost = len(want_imps - logged) + len(want_outs - outcomes) + len(want_events - events)
            print(f"  lost: {lost}; outbox drained {drained_s:.1f} s after the targets came back")

            s, sr = fusion_schema.served, fusion_schema.served_requests
            served = _rows(url["fusion"], select(s.c.request_id, s.c.features))
            shared = {
                r.request_id: r.features  # type: ignore[attr-defined]
                for r in _rows(url["fusion"], select(sr.c.request_id, sr.c.features))
            }
            now_bytes = sum(len(json.dumps(r.features)) for r in served)  # type: ignore[attr-defined]
            now_bytes += sum(len(json.dumps(f)) for f in shared.values())
            before = sum(
                len(json.dumps({**shared.get(r.request_id, {}), **r.features}))  # type: ignore[attr-defined]
                for r in served
            )
            print(
                f"serve-log feature JSON per served row ({len(served)} rows, {n} per request): "
                f"before {before / len(served):.0f} B, now {now_bytes / len(served):.0f} B"
            )
        finally:
            await platform.stop(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.outage_s, args.users, args.n))
