"""Closed-loop benchmark: N simulated sessions through the live platform (all four services over
real gRPC), an experiment with three arms (personalised copy + bandit, random copy, generic copy),
a retrain after the warm-up, and the figures as shares of the oracle. Shoppers click and buy by
the synthetic market's hidden model (docs/market.md): their hidden type's response to the copy's
angle, product fit, position and fatigue.

    .venv/bin/python bench/closed_loop.py [--sessions 800] [--triton] [--embedder minilm]

The last line is JSON: uplift_vs_random and uplift_vs_generic (personalised expected CTR after
learning over each control's, minus 1), oracle_share (personalised expected CTR / oracle's),
auc_ratio (model AUC / oracle AUC after learning) and sessions.

Copy angles: the pool is written for everyone and for the platform's behavioural segments, each
slot in its segment's two best angles (generation's angle_plan). Without --triton the
generation service has no LLM and stores template fallbacks, which carry no angle (plain copy,
no angle effect in the market); the table of pool angles printed first says what the run had.
`--pool-source market` adds, as a stand-in for LLM copy, the market's own lines in every angle
(one per angle per item, for everyone) straight into the generation service's pool store, ahead
of the fallbacks: fusion then sees five of them per item and can learn which angle works for
which segment; the copy itself is not what generation would write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog
from copyloop.demo.market import MarketConfig, SyntheticMarket
from copyloop.demo.simulator import POOL_SEGMENTS, ClosedLoopSimulator, LoopReport
from copyloop.fusion.recommend import primary_segment
from copyloop.fusion.report_chart import regret_chart
from copyloop.platform import PlatformConfig, start_platform
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

KEY = "bench-key"
TENANT = "bench"
META = (("authorization", f"Bearer {KEY}"),)
F = fusion_pb2
ARMS = [
    ("personalised", F.ARM_STRATEGY_PERSONALISED_BANDIT),
    ("random-copy", F.ARM_STRATEGY_RANDOM_COPY),
    ("generic-copy", F.ARM_STRATEGY_GENERIC_COPY),
]


async def fill_pool(
    generation: generation_pb2_grpc.GenerationServiceStub,
    catalog,
    variants: int,
    segments: list[str],
) -> None:
    from copyloop.demo.loader import item_to_proto

    job = (
        await generation.PregenerateCreatives(
            generation_pb2.PregenerateCreativesRequest(
                items=[item_to_proto(i) for i in catalog],
                channels=[common_pb2.CHANNEL_PUSH],
                locales=["en-US"],
                variants_per_item=variants,
                segments=segments,
                auto_approve=True,
            ),
            metadata=META,
        )
    ).job
    while job.state in (generation_pb2.JOB_STATE_PENDING, generation_pb2.JOB_STATE_RUNNING):
        await asyncio.sleep(1)
        job = (
            await generation.GetPregenerationJob(
                generation_pb2.GetPregenerationJobRequest(job_id=job.job_id), metadata=META
            )
        ).job
        print(
            f"\r  pre-generating copy: {job.done_count}/{job.total_count} items, "
            f"{job.creative_count} creatives",
            end="",
            flush=True,
        )
    print()


async def pool_angles(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> tuple[Counter[str], dict[str, set[str]]]:
    """Live creatives per angle ("" = plain) and the angles each item's copy has."""
    angles: Counter[str] = Counter()
    per_item: dict[str, set[str]] = {}
    token = ""
    while True:
        page = await generation.ListCreatives(
            generation_pb2.ListCreativesRequest(
                page_size=1000, page_token=token, status=generation_pb2.CREATIVE_STATUS_LIVE
            ),
            metadata=META,
        )
        for c in page.creatives:
            angle = c.angle or c.variant.angle
            angles[angle] += 1
            per_item.setdefault(c.item_id, set()).add(angle)
        token = page.next_page_token
        if not token:
            return angles, per_item


async def segments_by_type(
    profile: profile_pb2_grpc.ProfileServiceStub, market: SyntheticMarket
) -> None:
    """How the profile service labelled each hidden type (the primary segment fusion learns
    per): the bridge from what a platform can observe to what it cannot."""
    table: dict[str, Counter[str]] = {}
    for shopper in market.shoppers:
        reply = await profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id=shopper.shopper_id), metadata=META
        )
        table.setdefault(shopper.shopper_type, Counter())[
            primary_segment(reply.profile) or "(none)"
        ] += 1
    print("hidden type -> primary segment the platform sees:")
    for kind, counts in sorted(table.items()):
        print(f"  {kind:<19} " + ", ".join(f"{seg} {n}" for seg, n in counts.most_common()))


def store_market_lines(database_url: str, market: SyntheticMarket, tenant: str) -> int:
    """`--pool-source market`: one live line per angle per item (the market's own wording),
    for everyone, in the generation service's pool store."""
    from copyloop.common.db import make_engine
    from copyloop.generation.store import LIVE, CreativeStore, NewCreative

    store = CreativeStore(make_engine(database_url))
    news = []
    for item_id in market.item_ids:
        first: dict[str, str] = {}
        for text, angle in market.copy_variants_with_angles(item_id):
            if angle and angle not in first:
                first[angle] = text
        news += [
            NewCreative(
                item_id=item_id,
                item_version=0,
                channel="push",
                locale="en-US",
                segment="",
                template_version="market-lines",
                text=text,
                quality=1.0,
                variant={"text": text, "angle": angle},
            )
            for angle, text in first.items()
        ]
    return len(store.add(tenant, news, LIVE))


def print_report(title: str, report: LoopReport) -> None:
    print(f"\n{title}: {report.impressions} impressions")
    print(
        f"  {'arm':<14} {'impr':>6} {'clicks':>6} {'exp CTR':>8} {'obs CTR':>8} {'CVR':>6} "
        f"{'oracle':>8} {'share':>6} {'copy-oracle':>11} {'share':>6}"
    )
    for a in report.arms.values():
        print(
            f"  {a.arm:<14} {a.impressions:>6} {a.clicks:>6} {a.expected_ctr:>8.4f} "
            f"{a.observed_ctr:>8.4f} {a.cvr:>6.3f} {a.oracle_ctr:>8.4f} {a.share_of_oracle:>6.1%}"
            f" {a.copy_oracle_ctr:>11.4f} {a.share_of_copy_oracle:>6.1%}"
        )
    print(
        "  (oracle: best items, copy and slots for the shopper; copy-oracle: the arm's own "
        "items and ranks with each item's best live copy)"
    )
    p = report.arms.get("personalised")
    for other in ("random-copy", "generic-copy"):
        o = report.arms.get(other)
        if p and o and o.expected_ctr:
            observed = (p.observed_ctr / o.observed_ctr - 1) if o.observed_ctr else math.nan
            by_share = p.share_of_oracle / o.share_of_oracle - 1 if o.share_of_oracle else math.nan
            print(
                f"  uplift personalised vs {other}: "
                f"{p.expected_ctr / o.expected_ctr - 1:+.1%} (expected CTR), "
                f"{observed:+.1%} (observed), {by_share:+.1%} (share of each arm's oracle)"
            )
    ratio = report.model_auc / report.oracle_auc if report.oracle_auc else math.nan
    print(
        f"  model AUC {report.model_auc:.3f} vs oracle AUC {report.oracle_auc:.3f} "
        f"(ratio {ratio:.3f}) on the same impressions"
    )


def figures(report: LoopReport, sessions: int) -> dict[str, float | int]:
    """The summary line: personalised vs the controls and vs the oracle, after learning."""
    arms = report.arms
    p = arms.get("personalised")

    def uplift(other: str) -> float:
        o = arms.get(other)
        if not (p and o and o.expected_ctr):
            return math.nan
        return round(p.expected_ctr / o.expected_ctr - 1, 4)

    return {
        "uplift_vs_random": uplift("random-copy"),
        "uplift_vs_generic": uplift("generic-copy"),
        "oracle_share": round(p.share_of_oracle, 4) if p else math.nan,
        "auc_ratio": round(report.model_auc / report.oracle_auc, 4)
        if report.oracle_auc
        else math.nan,
        "sessions": sessions,
    }


async def bench(args: argparse.Namespace) -> None:
    var = Path(args.var_dir or tempfile.mkdtemp(prefix="copyloop-loop-"))
    triton = None
    model_dir = ""
    if args.triton:
        from copyloop.generation.copywriter.train import DEFAULT_OUT_DIR, train_copywriter
        from copyloop.generation.triton_local import LocalTriton

        model_dir = str(Path(args.model_dir or DEFAULT_OUT_DIR).resolve())
        train_copywriter(model_dir)
        triton = LocalTriton(model_dir).start()
    config = PlatformConfig(
        var_dir=var,
        api_keys=f"{KEY}:{TENANT}",
        embedder=args.embedder,
        triton_url=triton.grpc_url if triton else "",
        model_dir=model_dir,
    )
    platform = await start_platform(config)
    channels = [
        grpc.aio.insecure_channel(a)
        for a in (platform.fusion.address, platform.profile.address, platform.generation.address)
    ]
    fusion = fusion_pb2_grpc.FusionServiceStub(channels[0])
    profile = profile_pb2_grpc.ProfileServiceStub(channels[1])
    generation = generation_pb2_grpc.GenerationServiceStub(channels[2])
    try:
        catalog = generate_catalog(args.items)
        market = SyntheticMarket(catalog, MarketConfig(n_shoppers=args.shoppers), seed=args.seed)
        sim = ClosedLoopSimulator(
            market,
            catalog,
            fusion,
            profile,
            generation,
            META,
            seed=args.seed,
            pool_segments=POOL_SEGMENTS,
        )
        started = time.perf_counter()
        await load_catalog(profile, catalog, META)
        print(f"seeded {await sim.seed_history()} browsing events for {args.shoppers} shoppers")
        await segments_by_type(profile, market)
        segments = ["", *POOL_SEGMENTS]
        await fill_pool(generation, catalog, args.variants, segments)
        if args.pool_source == "market":
            stored = store_market_lines(config.url("generation"), market, TENANT)
            print(f"stored {stored} market lines (a stand-in for LLM copy)")
        angles, per_item = await pool_angles(generation)
        print(
            "live pool by angle: "
            + ", ".join(f"{a or 'plain'} {n}" for a, n in sorted(angles.items()))
            + f"; items with copy in 2+ angles: "
            f"{sum(len(a - {''}) >= 2 for a in per_item.values())}/{len(catalog)}"
        )
        await fusion.CreateExperiment(
            F.CreateExperimentRequest(
                experiment_id="closed-loop",
                arms=[F.Arm(arm_id=a, strategy=s, traffic_weight=1) for a, s in ARMS],
            ),
            metadata=META,
        )
        warm = int(args.sessions * args.warmup)
        await sim.run(warm, concurrency=args.concurrency)
        print_report("warm-up (cold-start prior, bandit learning)", sim.report())
        try:
            retrain = await fusion.RetrainModel(
                F.RetrainModelRequest(window_days=1), metadata=META, timeout=900
            )
            print(
                f"\nretrain: {retrain.model_version} promoted={retrain.promoted} ({retrain.reason})"
            )
        except grpc.aio.AioRpcError as error:  # e.g. too few impressions on a short run
            print(f"\nretrain refused: {error.code().name}: {error.details()}")
        learned = await sim.run(args.sessions - warm, concurrency=args.concurrency, start_step=warm)
        report = sim.report(learned)
        print_report("after learning", report)
        exp = await fusion.GetExperimentReport(
            F.GetExperimentReportRequest(experiment_id="closed-loop"), metadata=META
        )
        print("\nexperiment report (platform's own view, all sessions):")
        for a in exp.arms:
            print(
                f"  {a.arm_id:<14} users {a.user_count:>4} impr {a.impressions:>6} "
                f"CTR {a.ctr:.4f} lift {a.ctr_lift:+.1%} "
                f"[{a.ctr_lift_interval.lower:+.1%}, {a.ctr_lift_interval.upper:+.1%}] "
                f"P(best) {a.probability_best:.2f}"
            )
        print(f"  sample ratio p = {exp.sample_ratio_p_value:.3f}")
        full = sim.report()
        buckets = max(1, args.sessions // 20)
        series: dict[str, list[float]] = {}
        oracle: list[float] = []
        for b in range(0, args.sessions, buckets):
            window = [s for s in full.steps if b <= s[0] < b + buckets]
            oracle.append(sum(s[3] for s in window) / len(window) if window else 0.0)
            for arm in full.arms:
                mine = [s[2] for s in window if s[1] == arm]
                series.setdefault(arm, []).append(sum(mine) / len(mine) if mine else float("nan"))
        out = Path(args.png)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(
            regret_chart(oracle, series, title="Closed loop: expected CTR per arm vs oracle")
        )
        print(f"\nchart: {out}   total time {time.perf_counter() - started:.0f}s")
        print(json.dumps(figures(report, args.sessions)))
    finally:
        for c in channels:
            await c.close()
        await platform.stop(0)
        if triton:
            triton.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=800)
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="share of sessions before the retrain"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--shoppers", type=int, default=150)
    parser.add_argument(
        "--variants",
        type=int,
        default=4,
        help="copy variants pre-generated per (item, segment), spread over two angles",
    )
    parser.add_argument("--embedder", default="hashing", choices=["minilm", "hashing"])
    parser.add_argument(
        "--triton", action="store_true", help="write copy with the demo LLM through a local Triton"
    )
    parser.add_argument("--model-dir", default="")
    parser.add_argument(
        "--pool-source",
        default="generation",
        choices=["generation", "market"],
        help="market: also store the market's lines in every angle (a stand-in for LLM copy)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--var-dir", default="")
    parser.add_argument("--png", default="var/bench/closed_loop.png")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
