"""The main job's walkthrough, run against a live platform over gRPC: demo catalog and shoppers,
a pool of LLM-written copy, an experiment, a simulated warm-up with a retrain, then
recommendations for two contrasting shoppers and the experiment report."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from copyloop.demo.catalog import DemoItem, generate_catalog
from copyloop.demo.loader import item_to_proto, load_catalog, stream_events
from copyloop.demo.market import MarketConfig, Shopper, SyntheticMarket
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.demo.simulator import ClosedLoopSimulator
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

F = fusion_pb2
EXPERIMENT = "copy-personalisation"
ARMS = [
    ("personalised", F.ARM_STRATEGY_PERSONALISED_BANDIT, 2.0),
    ("random-copy", F.ARM_STRATEGY_RANDOM_COPY, 1.0),
    ("generic-copy", F.ARM_STRATEGY_GENERIC_COPY, 1.0),
]


@dataclass(frozen=True)
class WalkthroughConfig:
    items: int = 240
    shoppers: int = 400
    # Copy for everyone in five angles per item, so there is a choice to personalise.
    variants: int = 5
    # Copy written for these segments (the demo shoppers' commonest) on the first items.
    segments: tuple[str, ...] = ("bargain_hunter", "premium_shopper", "loyal_high_value")
    segment_items: int = 80
    # Chinese push copy for everyone on the first items, so a zh-CN shopper reads model copy
    # (written in Chinese by the same copywriter), not only template lines.
    zh_items: int = 80
    zh_variants: int = 3
    warmup_sessions: int = 400
    # Sessions after the retrain: the experiment needs users, not only impressions, to tell
    # the arms apart (its intervals count users), so it runs on until each arm has many.
    measured_sessions: int = 4000
    concurrency: int = 8
    seed: int = 7
    chart_path: Path = Path("var/experiment.png")
    # Version 1's weights and the Triton to load a new version into: with both, the walkthrough
    # ends with one copywriter cycle (the copy that won fine-tunes the next version).
    copywriter_model_dir: str = ""
    triton_url: str = ""
    weights_root: Path = Path("var/models")  # where a new version's weights are written


class Walkthrough:
    def __init__(
        self,
        addresses: dict[str, str],
        api_key: str,
        config: WalkthroughConfig = WalkthroughConfig(),
    ) -> None:
        self.config = config
        self.meta = (("authorization", f"Bearer {api_key}"),)
        self._channels = {name: grpc.aio.insecure_channel(addr) for name, addr in addresses.items()}
        self.fusion = fusion_pb2_grpc.FusionServiceStub(self._channels["fusion"])
        self.profile = profile_pb2_grpc.ProfileServiceStub(self._channels["profile"])
        self.generation = generation_pb2_grpc.GenerationServiceStub(self._channels["generation"])
        self.catalog: list[DemoItem] = generate_catalog(config.items)
        self.market = SyntheticMarket(
            self.catalog, MarketConfig(n_shoppers=config.shoppers), seed=config.seed
        )
        self.sim = ClosedLoopSimulator(
            self.market,
            self.catalog,
            self.fusion,
            self.profile,
            self.generation,
            self.meta,
            seed=config.seed,
            oracle=False,  # the walkthrough reports the arms, not shares of the oracle
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def prepare(self) -> None:
        """Catalog, shopper history, copy pool and experiment; safe to repeat (idempotent)."""
        await load_catalog(self.profile, self.catalog, self.meta)
        events = await self.sim.seed_history()
        # Plus the demo shoppers (shopper-00000 ...) the load-test configs and docs refer to.
        browsing = generate_events(self.catalog, make_shoppers(self.catalog, 500), now=time.time())
        summary = await stream_events(self.profile, browsing, self.meta)
        print(
            f"Catalog: {len(self.catalog)} items. Simulated shoppers: {self.config.shoppers} "
            f"with {events} browsing events; demo shoppers: 500 with "
            f"{summary.accepted + summary.duplicate} events."
        )
        await self._fill_pool()
        await self.fusion.CreateExperiment(
            F.CreateExperimentRequest(
                experiment_id=EXPERIMENT,
                display_name="Personalised LLM copy vs random vs generic",
                arms=[F.Arm(arm_id=a, strategy=s, traffic_weight=w) for a, s, w in ARMS],
            ),
            metadata=self.meta,
        )

    async def _fill_pool(self) -> None:
        """Push copy for everyone for every item, plus copy written for the commonest shopper
        segments (in each segment's best angles) for the first `segment_items` items."""
        missing = await self._items_without_copy(self.catalog, "")
        if missing:
            await self._pregenerate(missing, [], self.config.variants, "everyone")
            subset = self.catalog[: self.config.segment_items]
            await self._pregenerate(subset, list(self.config.segments), 2, "segments")
        zh = await self._items_without_copy(self.catalog[: self.config.zh_items], "", "zh-CN")
        if zh:
            await self._pregenerate(zh, [], self.config.zh_variants, "zh-CN", locale="zh-CN")
        if not missing and not zh:
            print("Copy pool: already filled.")

    async def _items_without_copy(
        self, items: Sequence[DemoItem], segment: str, locale: str = "en-US"
    ) -> list[DemoItem]:
        live = await self.generation.GetCreatives(
            generation_pb2.GetCreativesRequest(
                queries=[generation_pb2.CreativeQuery(item_id=i.item_id) for i in items],
                channel=common_pb2.CHANNEL_PUSH,
                locale=locale,
                segment=segment,
                max_per_item=1,
            ),
            metadata=self.meta,
        )
        return [i for i, entry in zip(items, live.items, strict=True) if not entry.creatives]

    async def _pregenerate(
        self,
        items: Sequence[DemoItem],
        segments: list[str],
        variants: int,
        label: str,
        locale: str = "en-US",
    ) -> None:
        job = (
            await self.generation.PregenerateCreatives(
                generation_pb2.PregenerateCreativesRequest(
                    items=[item_to_proto(i) for i in items],
                    channels=[common_pb2.CHANNEL_PUSH],
                    locales=[locale],
                    segments=segments,
                    variants_per_item=variants,
                    auto_approve=True,
                ),
                metadata=self.meta,
            )
        ).job
        while job.state in (generation_pb2.JOB_STATE_PENDING, generation_pb2.JOB_STATE_RUNNING):
            await asyncio.sleep(1)
            job = (
                await self.generation.GetPregenerationJob(
                    generation_pb2.GetPregenerationJobRequest(job_id=job.job_id), metadata=self.meta
                )
            ).job
            print(
                f"\rCopy pool ({label}): writing push copy with the LLM, "
                f"{job.done_count}/{job.total_count} slots, {job.creative_count} creatives",
                end="",
                flush=True,
            )
        print()

    async def warm_up(self) -> None:
        print(
            f"Warm-up: {self.config.warmup_sessions} simulated shopping sessions through "
            "Recommend/ReportOutcome ..."
        )
        began = time.monotonic()
        await self.sim.run(self.config.warmup_sessions, concurrency=self.config.concurrency)
        report = self.sim.report()
        print(
            f"  {report.impressions} impressions in {time.monotonic() - began:.0f} s; "
            "expected CTR per arm: "
            + ", ".join(f"{a.arm} {a.expected_ctr:.4f}" for a in report.arms.values())
        )
        try:
            retrain = await self.fusion.RetrainModel(
                F.RetrainModelRequest(window_days=1), metadata=self.meta, timeout=900
            )
            print(
                f"  retrained the CTR/CVR model: {retrain.model_version}, "
                f"promoted={retrain.promoted} ({retrain.reason})"
            )
        except grpc.aio.AioRpcError as exc:
            print(f"  retrain skipped: {exc.details()}")
        if self.config.measured_sessions:
            print(f"Then {self.config.measured_sessions} more sessions with what was learned ...")
            start = self.config.warmup_sessions
            began = time.monotonic()
            learned = await self.sim.run(
                self.config.measured_sessions,
                concurrency=self.config.concurrency,
                start_step=start,
            )
            report = self.sim.report(learned)
            print(
                f"  {report.impressions} impressions in {time.monotonic() - began:.0f} s; "
                "expected CTR per arm (the market's own click probabilities): "
                + ", ".join(f"{a.arm} {a.expected_ctr:.4f}" for a in report.arms.values())
            )

    async def show_copywriter_cycle(self) -> None:
        """Generation learns from results: the served copy that beat its predicted clicks
        fine-tunes the next copywriter version, published and loaded into the running Triton
        (about a minute on 2 cores). New copy is then written by it; an experiment arm can pin
        either version (`Arm.copywriter_version`) to A/B-test them."""
        if not (self.config.copywriter_model_dir and self.config.triton_url):
            return
        from copyloop.demo.copywriter_cycle import run_copywriter_cycle

        print("\nCopywriter cycle: fine-tuning the next version on the copy that won ...")
        try:
            await run_copywriter_cycle(
                self.fusion,
                self.generation,
                self.profile,
                self.meta,
                model_dir=self.config.copywriter_model_dir,
                triton_url=self.config.triton_url,
                weights_root=self.config.weights_root,
                show=item_to_proto(self.catalog[0]),
            )
        except (grpc.aio.AioRpcError, OSError, RuntimeError) as exc:
            print(f"  copywriter cycle skipped: {exc}")

    def contrasting_shoppers(self) -> tuple[Shopper, Shopper]:
        """The most price-sensitive deal hunter and the biggest-budget quality seeker (hidden
        types of the market: the platform sees only their behaviour)."""
        warm = [s for s in self.market.shoppers if not s.cold]
        deals = [s for s in warm if s.shopper_type == "deal_hunter"] or warm
        quality = [s for s in warm if s.shopper_type == "quality_seeker"] or warm
        return (
            max(deals, key=lambda s: s.price_sensitivity),
            max(quality, key=lambda s: s.budget - 40 * s.price_sensitivity),
        )

    async def show_recommendations(
        self, shoppers: Sequence[Shopper], locale: str = "en-US", n: int = 5
    ) -> None:
        for shopper in shoppers:
            profile = (
                await self.profile.GetUserProfile(
                    profile_pb2.GetUserProfileRequest(user_id=shopper.shopper_id),
                    metadata=self.meta,
                )
            ).profile
            cats = ", ".join(f"{a.key} {a.share:.0%}" for a in profile.category_affinities[:3])
            reply = await self.fusion.Recommend(
                F.RecommendRequest(
                    user_id=shopper.shopper_id,
                    n=n,
                    latency_budget_ms=3000,
                    # The zh-CN pool covers the first items: ask among them for that read.
                    candidate_item_ids=(
                        [i.item_id for i in self.catalog[: self.config.zh_items]]
                        if locale.startswith("zh")
                        else []
                    ),
                    context=common_pb2.Context(
                        channel=common_pb2.CHANNEL_PUSH,
                        locale=locale,
                        device=common_pb2.DEVICE_MOBILE,
                    ),
                ),
                metadata=self.meta,
            )
            print(
                f"\n{shopper.shopper_id} (hidden type {shopper.shopper_type}): "
                f"likes {cats or '-'}; "
                f"segments {', '.join(profile.segments) or '-'}; "
                f"hidden budget {shopper.budget:.0f}, "
                f"price sensitivity {shopper.price_sensitivity:.2f} "
                f"(arm: {reply.assignment.arm_id or '-'}, locale {locale}, "
                f"request {reply.request_id})"
            )
            for r in reply.recommendations:
                source = F.CopySource.Name(r.copy.source).removeprefix("COPY_SOURCE_").lower()
                angle = f", {r.copy.angle} angle" if r.copy.angle else ""
                print(
                    f"  {r.rank}. {r.title} ({r.price:.2f} {r.currency_code})  "
                    f"pCTR {r.p_ctr:.3f} -> posterior {r.copy.posterior_ctr:.3f}, "
                    f"pCVR {r.p_cvr:.3f}  [{source}{angle}, chosen with p={r.copy.propensity:.2f}]"
                )
                print(f'     "{r.copy.text}"')
                if r.reasons:
                    print(f"     why: {'; '.join(r.reasons)}")
            for d in reply.degradations:
                print(f"  degraded: {d.component} -> {d.fallback} ({d.reason})")

    async def show_experiment(self) -> None:
        report = await self.fusion.GetExperimentReport(
            F.GetExperimentReportRequest(experiment_id=EXPERIMENT, include_chart=True),
            metadata=self.meta,
        )
        print(f"\nExperiment {EXPERIMENT} (baseline {report.baseline_arm_id}):")
        print(
            f"  {'arm':<14} {'users':>5} {'impr':>6} {'clicks':>6} {'CTR':>7} {'CVR':>6} "
            f"{'rev/impr':>8} {'CTR lift':>9} {'95% interval':>18} {'P(best)':>7}"
        )
        for a in report.arms:
            lift = "-" if math.isnan(a.ctr_lift) else f"{a.ctr_lift:+.1%}"
            interval = (
                "-"
                if math.isnan(a.ctr_lift_interval.lower)
                else f"[{a.ctr_lift_interval.lower:+.0%}, {a.ctr_lift_interval.upper:+.0%}]"
            )
            print(
                f"  {a.arm_id:<14} {a.user_count:>5} {a.impressions:>6} {a.clicks:>6} "
                f"{a.ctr:>7.4f} {a.cvr:>6.3f} {a.revenue_per_impression:>8.3f} {lift:>9} "
                f"{interval:>18} {a.probability_best:>7.2f}"
            )
        for line in verdicts(report):
            print(f"  {line}")
        if report.slices:
            print(f"  by shopper segment and copy angle (impressions >= {SLICE_MIN_IMPRESSIONS}):")
            print(
                f"    {'arm':<14} {'segment':<16} {'angle':<12} {'impr':>6} {'CTR':>7} {'95%':>15}"
            )
            for c in report.slices:
                if c.impressions < SLICE_MIN_IMPRESSIONS:
                    continue
                band = f"[{c.ctr_interval.lower:.3f}, {c.ctr_interval.upper:.3f}]"
                print(
                    f"    {c.arm_id:<14} {c.segment or '-':<16} {c.angle or '-':<12} "
                    f"{c.impressions:>6} {c.ctr:>7.4f} {band:>15}"
                )
        mismatch = " (MISMATCH)" if report.sample_ratio_mismatch else ""
        print(f"  sample ratio check p = {report.sample_ratio_p_value:.3f}{mismatch}")
        if report.chart_png:
            self.config.chart_path.parent.mkdir(parents=True, exist_ok=True)
            self.config.chart_path.write_bytes(report.chart_png)
            print(f"  chart: {self.config.chart_path}")


SLICE_MIN_IMPRESSIONS = 30  # smaller cells say nothing yet; the RPC returns them all


def verdicts(report: F.GetExperimentReportResponse) -> list[str]:
    """Each arm against the baseline in words: a difference whose 95% interval still spans
    zero is said to be not significant yet, however large the point estimate."""
    lines = []
    for a in report.arms:
        if a.arm_id == report.baseline_arm_id or math.isnan(a.ctr_lift_interval.lower):
            continue
        low, high = a.ctr_lift_interval.lower, a.ctr_lift_interval.upper
        if low > 0 or high < 0:
            better = "better" if low > 0 else "worse"
            lines.append(
                f"{a.arm_id} is significantly {better} than {report.baseline_arm_id} "
                f"(CTR lift {a.ctr_lift:+.1%}, 95% interval [{low:+.0%}, {high:+.0%}])."
            )
        else:
            lines.append(
                f"{a.arm_id} vs {report.baseline_arm_id}: not significant yet "
                f"(CTR lift {a.ctr_lift:+.1%}, 95% interval [{low:+.0%}, {high:+.0%}] spans 0)."
            )
    return lines
