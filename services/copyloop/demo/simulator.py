"""A market to run the platform against: synthetic shoppers of hidden types browse and buy as
their type would (building real profiles), ask FusionService for recommendations over gRPC, and
click and buy according to the hidden model (docs/market.md), given the copy's angle, its rank
and how often the shopper has seen the item. Because the simulator knows the true
probabilities, every figure can be given as a share of the best possible (the oracle policy)
and the model's AUC next to the oracle's."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import numpy as np

from copyloop.common.protoconv import CHANNEL_ENUMS, epoch_to_ts
from copyloop.demo.catalog import DemoItem
from copyloop.demo.market import Shopper, SyntheticMarket
from copyloop.prediction.features.types import ContextFeatures
from copyloop.prediction.training.evaluation import auc
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
DEVICES = {
    "mobile": common_pb2.DEVICE_MOBILE,
    "desktop": common_pb2.DEVICE_DESKTOP,
    "tablet": common_pb2.DEVICE_TABLET,
    "app": common_pb2.DEVICE_APP,
}
DAY_S = 86_400.0


RETRIES = 4  # attempts per Recommend when the platform answers UNAVAILABLE
# Segments whose pool copy the oracle may also use (FusionService writes and serves copy per
# primary behavioural segment; copy for everyone, "", always).
POOL_SEGMENTS: tuple[str, ...] = (
    "new_user",
    "lapsed",
    "loyal_high_value",
    "bargain_hunter",
    "premium_shopper",
    "window_shopper",
)


@dataclass
class Impression:
    arm: str
    step: int
    p_true: float
    p_served: float
    clicked: bool
    purchased: bool
    revenue: float


@dataclass
class SessionOutcome:
    arm: str
    impressions: list[Impression]
    oracle_ctr: float
    # The platform's own items and ranks, each with its best live copy for this shopper: how
    # much of the gap to the oracle is the copy rather than the choice of items.
    copy_oracle_ctr: float = 0.0


@dataclass
class ArmSummary:
    arm: str
    impressions: int
    clicks: int
    purchases: int
    expected_ctr: float  # mean true click probability of what was shown
    observed_ctr: float
    cvr: float
    oracle_ctr: float  # mean true click probability of the oracle's choices, same sessions
    copy_oracle_ctr: float = 0.0  # same items and ranks as shown, best copy for each

    @property
    def share_of_oracle(self) -> float:
        return self.expected_ctr / self.oracle_ctr if self.oracle_ctr else 0.0

    @property
    def share_of_copy_oracle(self) -> float:
        return self.expected_ctr / self.copy_oracle_ctr if self.copy_oracle_ctr else 0.0


@dataclass
class LoopReport:
    arms: dict[str, ArmSummary]
    model_auc: float
    oracle_auc: float
    impressions: int
    steps: list[tuple[int, str, float, float]] = field(
        default_factory=list
    )  # (step, arm, expected ctr, oracle ctr)


class ClosedLoopSimulator:
    def __init__(
        self,
        market: SyntheticMarket,
        catalog: Sequence[DemoItem],
        fusion: fusion_pb2_grpc.FusionServiceStub,
        profile: profile_pb2_grpc.ProfileServiceStub,
        generation: generation_pb2_grpc.GenerationServiceStub,
        metadata: Sequence[tuple[str, str]],
        channel: str = "push",
        locale: str = "en-US",
        seed: int = 0,
        pool_segments: Sequence[str] = POOL_SEGMENTS,
        oracle: bool = True,
    ) -> None:
        self.market = market
        self.catalog = {i.item_id: i for i in catalog}
        self.fusion, self.profile, self.generation = fusion, profile, generation
        self.metadata = tuple(metadata)
        self.channel, self.locale = channel, locale
        self.rng = random.Random(seed)
        self.pool_segments = tuple(dict.fromkeys(("", *pool_segments)))
        self._live_texts: dict[str, list[tuple[str, str]]] = {}
        # Impressions so far per (shopper, item): the market's fatigue term reads it.
        self._exposures: Counter[tuple[str, str]] = Counter()
        self.outcomes: list[SessionOutcome] = []
        self.retried = 0  # Recommend calls retried after UNAVAILABLE
        # The oracle's shares cost ~400 market evaluations per session: the benches that
        # report them want it; a walkthrough that only reports the arms' CTRs does not.
        self.oracle = oracle

    async def seed_history(self, days: float = 30.0) -> int:
        """Browsing and purchases that follow each shopper's hidden type, taste and budget
        (`SyntheticMarket.history`, docs/market.md), so the profile service builds real
        profiles whose segments correlate with the type (cold shoppers have none)."""
        now = time.time()
        events = []
        for shopper in self.market.shoppers:
            history = [
                (i, bought)
                for i, bought in self.market.history(shopper, self.rng)
                if i in self.catalog
            ]
            # Views first, purchases later: a purchase is the newest thing a buyer did.
            times = sorted(now - self.rng.uniform(0, days) * DAY_S for _ in history)
            for n, ((item_id, bought), t) in enumerate(zip(history, times, strict=True)):
                events.append(
                    profile_pb2.Event(
                        event_id=f"seed-{shopper.shopper_id}-{n}",
                        user_id=shopper.shopper_id,
                        type=(
                            profile_pb2.EVENT_TYPE_PURCHASE
                            if bought
                            else profile_pb2.EVENT_TYPE_VIEW
                        ),
                        item_id=item_id,
                        event_time=epoch_to_ts(t),
                        price=self.catalog[item_id].price,
                    )
                )
        if not events:
            return 0

        async def chunks() -> AsyncIterator[profile_pb2.IngestEventStreamRequest]:
            for start in range(0, len(events), 2000):
                yield profile_pb2.IngestEventStreamRequest(events=events[start : start + 2000])

        reply: profile_pb2.IngestEventStreamResponse = await self.profile.IngestEventStream(
            chunks(), metadata=self.metadata
        )
        return reply.summary.accepted + reply.summary.duplicate

    async def _texts(self, item_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Live copy per item as (text, angle), for everyone and for every segment in
        `pool_segments` (what the oracle may choose from); cached for the run."""
        missing = [i for i in item_ids if i not in self._live_texts]
        if missing:
            found: dict[str, dict[str, tuple[str, str]]] = {i: {} for i in missing}
            for segment in self.pool_segments:
                reply = await self.generation.GetCreatives(
                    generation_pb2.GetCreativesRequest(
                        queries=[generation_pb2.CreativeQuery(item_id=i) for i in missing],
                        channel=CHANNEL_ENUMS[self.channel],
                        locale=self.locale,
                        segment=segment,
                        max_per_item=20,
                    ),
                    metadata=self.metadata,
                )
                for entry in reply.items:
                    for c in entry.creatives:
                        found[entry.item_id][c.creative_id] = (c.text, c.angle or c.variant.angle)
            for item_id, creatives in found.items():
                self._live_texts[item_id] = list(creatives.values())
        return {i: self._live_texts.get(i, []) for i in item_ids}

    def _context(self, shopper: Shopper) -> tuple[common_pb2.Context, ContextFeatures]:
        device = self.rng.choice(shopper.devices)
        now = time.time()
        ctx = common_pb2.Context(
            channel=CHANNEL_ENUMS[self.channel],
            locale=self.locale,
            device=DEVICES[device],
            request_time=epoch_to_ts(now),
        )
        return ctx, ContextFeatures(
            channel=self.channel,
            hour=datetime.fromtimestamp(now, UTC).hour,
            device=device,
            locale=self.locale,
        )

    async def session(
        self, step: int, n: int = 10, candidates: int = 50, budget_ms: int = 2000
    ) -> SessionOutcome:
        shopper = self.rng.choice(self.market.shoppers)
        pool = self.rng.sample(sorted(self.catalog), min(candidates, len(self.catalog)))
        ctx, features = self._context(shopper)
        request = F.RecommendRequest(
            user_id=shopper.shopper_id,
            context=ctx,
            candidate_item_ids=pool,
            n=n,
            latency_budget_ms=budget_ms,
            # The loop is judged on clicks, so it asks for the ranking that maximises them
            # (the platform's default objective is orders, pCTR x pCVR).
            objective=F.RANKING_OBJECTIVE_CTR,
        )
        reply = await self._recommend(request)
        arm = reply.assignment.arm_id or "default"
        best, copy_best = (
            await self._oracles(shopper, pool, features, reply, n) if self.oracle else ([], [])
        )
        events: list[F.OutcomeEvent] = []
        impressions = []
        for rec in reply.recommendations:
            p_click, p_buy = self._p(
                shopper, rec.item_id, rec.copy.text, features, rec.copy.angle, rec.rank
            )
            self._exposures[(shopper.shopper_id, rec.item_id)] += 1
            clicked = self.rng.random() < p_click
            bought = clicked and self.rng.random() < p_buy
            price = self.catalog[rec.item_id].price
            impressions.append(
                Impression(arm, step, p_click, rec.p_ctr, clicked, bought, price if bought else 0.0)
            )
            base: dict[str, Any] = {
                "request_id": reply.request_id,
                "impression_id": rec.impression_id,
            }
            events.append(
                F.OutcomeEvent(
                    event_id=f"{rec.impression_id}-i", type=F.FEEDBACK_TYPE_IMPRESSION, **base
                )
            )
            if clicked:
                events.append(
                    F.OutcomeEvent(
                        event_id=f"{rec.impression_id}-c", type=F.FEEDBACK_TYPE_CLICK, **base
                    )
                )
            if bought:
                events.append(
                    F.OutcomeEvent(
                        event_id=f"{rec.impression_id}-p",
                        type=F.FEEDBACK_TYPE_PURCHASE,
                        value=price,
                        **base,
                    )
                )
        if events:
            await self.fusion.ReportOutcome(
                F.ReportOutcomeRequest(events=events), metadata=self.metadata
            )
        outcome = SessionOutcome(
            arm,
            impressions,
            float(np.mean(best)) if best else 0.0,
            float(np.mean(copy_best)) if copy_best else 0.0,
        )
        self.outcomes.append(outcome)
        return outcome

    async def _oracles(
        self,
        shopper: Shopper,
        pool: Sequence[str],
        features: ContextFeatures,
        reply: F.RecommendResponse,
        n: int,
    ) -> tuple[list[float], list[float]]:
        """True CTRs of the oracle's slots and of the served items with their best copy."""
        texts = await self._texts(pool)
        # The oracle knows everything: it takes each candidate's best live copy for this
        # shopper (at the shopper's fatigue for the item) and fills the same n slots best
        # first, so it also gets the best positions.
        attractive = sorted(
            (
                max(
                    self._p(shopper, i, text, features, angle, 1)[0]
                    for text, angle in texts[i] or [(self.catalog[i].title, "")]
                )
                for i in pool
            ),
            reverse=True,
        )[: len(reply.recommendations) or n]
        best = [
            p * (rank + 1) ** -self.market.config.position_exponent
            for rank, p in enumerate(attractive)
        ]
        copy_best = [
            max(
                self._p(shopper, rec.item_id, text, features, angle, rec.rank)[0]
                for text, angle in [*texts[rec.item_id], (rec.copy.text, rec.copy.angle)]
            )
            for rec in reply.recommendations
        ]
        return best, copy_best

    async def _recommend(self, request: F.RecommendRequest) -> F.RecommendResponse:
        """Recommend as a shop's client calls it: UNAVAILABLE is retryable (the SDK retries it
        too), so a busy moment of the one-process demo costs a retry, not the walkthrough."""
        for attempt in range(RETRIES):
            try:
                return await self.fusion.Recommend(request, metadata=self.metadata)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == RETRIES - 1:
                    raise
                self.retried += 1
                await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _p(
        self,
        shopper: Shopper,
        item_id: str,
        text: str,
        ctx: ContextFeatures,
        angle: str = "",
        position: int = 1,
    ) -> tuple[float, float]:
        """True probabilities at the shopper's current fatigue for the item."""
        return self.market.true_probabilities(
            shopper,
            self.catalog[item_id],
            item_id,
            text,
            ctx,
            angle=angle,
            position=position,
            exposures=self._exposures[(shopper.shopper_id, item_id)],
        )

    async def run(
        self, sessions: int, concurrency: int = 4, n: int = 10, start_step: int = 0
    ) -> list[SessionOutcome]:
        queue = list(range(start_step, start_step + sessions))
        results: list[SessionOutcome] = []

        async def worker() -> None:
            while queue:
                step = queue.pop(0)
                results.append(await self.session(step, n=n))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results

    def report(self, outcomes: Sequence[SessionOutcome] | None = None) -> LoopReport:
        outcomes = self.outcomes if outcomes is None else outcomes
        arms: dict[str, ArmSummary] = {}
        for arm in sorted({o.arm for o in outcomes}):
            mine = [o for o in outcomes if o.arm == arm]
            imps = [i for o in mine for i in o.impressions]
            clicks = sum(i.clicked for i in imps)
            arms[arm] = ArmSummary(
                arm=arm,
                impressions=len(imps),
                clicks=clicks,
                purchases=sum(i.purchased for i in imps),
                expected_ctr=float(np.mean([i.p_true for i in imps])) if imps else 0.0,
                observed_ctr=clicks / len(imps) if imps else 0.0,
                cvr=sum(i.purchased for i in imps) / clicks if clicks else 0.0,
                oracle_ctr=float(np.mean([o.oracle_ctr for o in mine])) if mine else 0.0,
                copy_oracle_ctr=float(np.mean([o.copy_oracle_ctr for o in mine])) if mine else 0.0,
            )
        imps = [i for o in outcomes for i in o.impressions]
        labels = np.array([i.clicked for i in imps])
        model_auc = oracle_auc = math.nan
        if labels.any() and not labels.all():
            model_auc = auc(labels, np.array([i.p_served for i in imps]))
            oracle_auc = auc(labels, np.array([i.p_true for i in imps]))
        steps = [
            (
                o.impressions[0].step,
                o.arm,
                float(np.mean([i.p_true for i in o.impressions])),
                o.oracle_ctr,
            )
            for o in outcomes
            if o.impressions
        ]
        return LoopReport(arms, model_auc, oracle_auc, len(imps), sorted(steps))


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]
