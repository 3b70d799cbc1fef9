"""Retraining without a person, and a guardrail that undoes a bad promotion.

Every `auto_retrain_check_s` the loop looks at each tenant in the training log:

1. **Guardrail** (when the live version replaced another): the clicks observed on impressions
   the live version scored against the clicks its served pCTR predicted
   (`training.guardrail`); when they disagree past the band and past chance, roll back to the
   previous live version and record why in the rolled-back version's metrics.
2. **Trigger**: `auto_retrain_outcomes` outcomes newer than the tenant's last model (the end
   of its evaluation window), or `auto_retrain_interval_s` since the last model with at
   least one new outcome. A triggered run trains on the logged window except its most recent
   `auto_retrain_eval_fraction` of impressions and judges the candidate on that slice through
   the promotion gate (`training.gate`) against the live version.

Trainings run on the domain's single trainer worker, so a triggered training never overlaps
another training of the tenant (manual or triggered). A failed attempt (too little data, a
database blip) is logged and tried again when the trigger fires again: `auto_retrain_outcomes`
more outcomes, or another interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field

from prometheus_client import Counter, Gauge

from copyloop.common.observability import REGISTRY
from copyloop.common.periodic import Periodic
from copyloop.prediction.domain import PredictionDomain
from copyloop.prediction.settings import PredictionSettings
from copyloop.prediction.training.guardrail import (
    GuardrailDecision,
    GuardrailThresholds,
    check_calibration,
)

log = logging.getLogger("copyloop.prediction.auto_retrain")

DECISIONS = Counter(
    "copyloop_prediction_auto_retrain_total",
    "Triggered retrainings by result: promoted, refused (the gate said no) or failed.",
    ["result"],
    registry=REGISTRY,
)
LAST_PROMOTED = Gauge(
    "copyloop_prediction_auto_retrain_last_promoted",
    "1 when the last triggered retraining promoted its model, 0 when it did not.",
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "copyloop_prediction_guardrail_rollbacks_total",
    "Live versions rolled back because served pCTR drifted from observed CTR.",
    registry=REGISTRY,
)
LIVE_RATIO = Gauge(
    "copyloop_prediction_guardrail_ratio",
    "Observed / predicted clicks of the live version at the last guardrail check.",
    registry=REGISTRY,
)


@dataclass(frozen=True)
class RetrainDecision:
    """What one triggered retraining did, for logs, metrics and tests."""

    tenant: str
    trigger: str
    result: str  # promoted | refused | failed
    version: str
    reason: str
    train_window: tuple[float, float]
    eval_window: tuple[float, float]
    time: float


@dataclass
class _TenantState:
    attempt_outcomes: int = -1  # new-outcome count at the last failed attempt
    attempt_time: float = 0.0


@dataclass
class AutoRetrain:
    domain: PredictionDomain
    settings: PredictionSettings
    decisions: dict[str, RetrainDecision] = field(default_factory=dict)  # last per tenant
    guardrail: dict[str, GuardrailDecision] = field(default_factory=dict)
    _state: dict[str, _TenantState] = field(default_factory=dict)
    _periodic: Periodic | None = None
    _started: float = field(default_factory=time.time)

    @property
    def enabled(self) -> bool:
        s = self.settings
        return bool(
            s.auto_retrain_outcomes or s.auto_retrain_interval_s or s.guardrail_min_impressions
        )

    def start(self) -> None:
        if self.enabled and self._periodic is None:
            self._started = time.time()
            self._periodic = Periodic(
                "prediction-auto-retrain",
                self.settings.auto_retrain_check_s,
                self.run_once,
                log,
                "auto-retrain check failed",
            )
            self._periodic.start()

    async def stop(self) -> None:
        if self._periodic is not None:
            await self._periodic.stop()
            self._periodic = None

    async def run_once(self, now: float | None = None) -> None:
        """One check of every tenant: the guardrail, then the trigger."""
        now = time.time() if now is None else now
        store = self.domain.store
        for tenant in await asyncio.to_thread(store.tenants):
            try:
                await self.check_guardrail(tenant, now)
                await self.maybe_retrain(tenant, now)
            except Exception:
                log.warning("auto-retrain check failed", exc_info=True, extra={"tenant": tenant})

    # ---- guardrail -----------------------------------------------------------------------

    async def check_guardrail(self, tenant: str, now: float) -> GuardrailDecision | None:
        s = self.settings
        if not s.guardrail_min_impressions:
            return None
        store = self.domain.store
        live = await asyncio.to_thread(store.live, tenant)
        if live is None or not live.previous_live:
            return None  # nothing to roll back to
        clicked, served = await asyncio.to_thread(
            store.served, tenant, live.version, now - s.auto_retrain_label_delay_s
        )
        decision = check_calibration(
            clicked,
            served,
            GuardrailThresholds(
                s.guardrail_min_impressions,
                s.guardrail_ratio_low,
                s.guardrail_ratio_high,
                s.guardrail_z,
            ),
        )
        self.guardrail[tenant] = decision
        if not decision.judged:
            return decision
        LIVE_RATIO.set(decision.ratio)
        if decision.rollback:
            restored = await self.domain.rollback_tenant(tenant)
            ROLLBACKS.inc()
            await asyncio.to_thread(
                store.annotate,
                tenant,
                live.version,
                "guardrail",
                {"rolled_back_to": restored.version, "reason": decision.reason, "time": now},
            )
            log.warning(
                "live model rolled back by the guardrail",
                extra={
                    "tenant": tenant,
                    "version": live.version,
                    "restored": restored.version,
                    "reason": decision.reason,
                },
            )
        return decision

    # ---- trigger -------------------------------------------------------------------------

    async def trigger(self, tenant: str, now: float) -> str:
        """Why `tenant` should retrain now ("" when it should not)."""
        s = self.settings
        store = self.domain.store
        latest = await asyncio.to_thread(store.list, tenant, 0, 1)
        watermark = latest[0].eval_window[1] if latest else 0.0
        fresh = await asyncio.to_thread(store.count_outcomes_since, tenant, watermark)
        state = self._state.setdefault(tenant, _TenantState())
        since = max(0, fresh - max(state.attempt_outcomes, 0))
        if s.auto_retrain_outcomes and since >= s.auto_retrain_outcomes:
            return f"{since} new outcomes (threshold {s.auto_retrain_outcomes})"
        if s.auto_retrain_interval_s and fresh:
            last = max(
                latest[0].create_time.timestamp() if latest else self._started,
                state.attempt_time,
            )
            if now - last >= s.auto_retrain_interval_s:
                interval = s.auto_retrain_interval_s
                return f"{now - last:.0f}s since the last model (interval {interval:.0f}s)"
        return ""

    def windows(self, times: list[float]) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """(train, evaluate): all but the most recent slice of the logged impressions, then
        that slice; None when there are too few to split."""
        k = int(len(times) * self.settings.auto_retrain_eval_fraction)
        if k < 1 or k >= len(times):
            return None
        split = times[-k]
        end = times[-1] + 1e-3
        if split <= times[0]:
            return None
        return (times[0], split), (split, end)

    async def maybe_retrain(self, tenant: str, now: float) -> RetrainDecision | None:
        s = self.settings
        if not (s.auto_retrain_outcomes or s.auto_retrain_interval_s):
            return None
        why = await self.trigger(tenant, now)
        if not why:
            return None
        store = self.domain.store
        start = now - s.auto_retrain_window_s if s.auto_retrain_window_s else 0.0
        times = await asyncio.to_thread(
            store.impression_times, tenant, start, now - s.auto_retrain_label_delay_s
        )
        split = self.windows(times)
        train, evaluate = split if split else ((0.0, 0.0), (0.0, 0.0))
        try:
            if split is None:
                raise ValueError(f"{len(times)} impressions: too few to split")
            outcome = await self.domain.run_training(
                tenant, train, evaluate, s.auto_retrain_epochs, seed=len(times)
            )
        except Exception as exc:
            state = self._state.setdefault(tenant, _TenantState())
            latest = await asyncio.to_thread(store.list, tenant, 0, 1)
            watermark = latest[0].eval_window[1] if latest else 0.0
            state.attempt_outcomes = await asyncio.to_thread(
                store.count_outcomes_since, tenant, watermark
            )
            state.attempt_time = now
            decision = RetrainDecision(
                tenant, why, "failed", "", str(exc) or type(exc).__name__, train, evaluate, now
            )
            self._record(decision)
            return decision
        self._state[tenant] = _TenantState()
        decision = RetrainDecision(
            tenant,
            why,
            "promoted" if outcome.promoted else "refused",
            outcome.record.version,
            outcome.reason,
            train,
            evaluate,
            now,
        )
        await asyncio.to_thread(
            store.annotate, tenant, outcome.record.version, "auto_retrain", asdict(decision)
        )
        self._record(decision)
        return decision

    def _record(self, decision: RetrainDecision) -> None:
        self.decisions[decision.tenant] = decision
        DECISIONS.labels(decision.result).inc()
        if decision.result != "failed":
            LAST_PROMOTED.set(1 if decision.result == "promoted" else 0)
        log.info(
            "auto-retrain",
            extra={
                "tenant": decision.tenant,
                "trigger": decision.trigger,
                "result": decision.result,
                "version": decision.version,
                "reason": decision.reason,
            },
        )
