"""Recommend: profile -> candidates -> creatives -> one batched score -> policy -> reply, inside
the request's latency budget. Every dependency may fail or be slow; each failure degrades the
answer (cold-start profile, cached popular items, fallback copy, prior scores) and the reply
says what was degraded, instead of failing the call."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf import field_mask_pb2, json_format

from copyloop.common.db import BlockingRunner
from copyloop.common.errors import Unavailable
from copyloop.common.protoconv import CHANNEL_NAMES, PRICE_BAND_NAMES
from copyloop.common.tenancy import current_tenant
from copyloop.common.vocabulary import DEFAULT_CHANNEL, DEFAULT_LOCALE, locale_or_default
from copyloop.fusion import bandit, experiments
from copyloop.fusion.downstream import Downstream, Metadata, describe
from copyloop.fusion.ranking import RankCandidate, RankingConfig, rank
from copyloop.fusion.reasons import ReasonEvidence, reasons_for
from copyloop.fusion.settings import FusionSettings
from copyloop.fusion.store import ArmSpec, ExperimentRecord, FusionStore, ServedRow
from copyloop.generation.messages import item_brief
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.served import generic_item_copy, safe_fallback
from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, prediction_pb2, profile_pb2

F = fusion_pb2
log = logging.getLogger("copyloop.fusion")

STRATEGY_MODES = {
    F.ARM_STRATEGY_PERSONALISED_BANDIT: bandit.SelectionMode.THOMPSON,
    F.ARM_STRATEGY_GREEDY_PREDICTED: bandit.SelectionMode.GREEDY,
    F.ARM_STRATEGY_RANDOM_COPY: bandit.SelectionMode.RANDOM,
}
OBJECTIVES = {
    F.RANKING_OBJECTIVE_CTR: "ctr",
    F.RANKING_OBJECTIVE_CTCVR: "ctcvr",
    F.RANKING_OBJECTIVE_EXPECTED_VALUE: "expected_value",
}
PRIOR_CTR, PRIOR_CVR = 0.03, 0.05
# What Recommend reads of a pool creative: asking for these only spares both sides the rest.
POOL_FIELDS = field_mask_pb2.FieldMask(
    paths=["creative_id", "text", "template_version", "angle", "segment"]
)
# An arm that pins a copywriter or template version also reads the creative's versions, to
# drop any a GenerationService that does not know the filter yet would still send.
POOL_FIELDS_PINNED = field_mask_pb2.FieldMask(paths=[*POOL_FIELDS.paths, "model_version"])
PRIOR_VERSION = "prior:fusion"


@dataclass(frozen=True)
class CopyVersions:
    """The copy an experiment arm serves: only that copywriter model version's and prompt
    template version's ("" = any)."""

    copywriter: str = ""
    template: str = ""

    @classmethod
    def of(cls, arm: ArmSpec | None) -> CopyVersions:
        if arm is None or not (arm.copywriter_version or arm.prompt_template_version):
            return ANY_VERSION
        return cls(arm.copywriter_version, arm.prompt_template_version)

    @property
    def pinned(self) -> bool:
        return bool(self.copywriter or self.template)

    def admits(self, model_version: str, template_version: str) -> bool:
        return (not self.copywriter or model_version == self.copywriter) and (
            not self.template or template_version == self.template
        )

    def describe(self) -> str:
        """ "copywriter version 2", "prompt template version v3", or both joined by "and"."""
        parts = []
        if self.copywriter:
            parts.append(f"copywriter version {self.copywriter}")
        if self.template:
            parts.append(f"prompt template version {self.template}")
        return " and ".join(parts)


ANY_VERSION = CopyVersions()


@dataclass
class CopyOption:
    creative_id: str
    text: str
    source: F.CopySource.ValueType
    template_version: str = ""
    angle: str = ""
    segment: str = ""  # the segment the copy was written for ("" = everyone)


@dataclass
class Slot:
    """One candidate item and everything learned about it during the request."""

    item: common_pb2.Item
    popularity_rank: int
    options: list[CopyOption] = field(default_factory=list)
    scores: list[prediction_pb2.CandidateScore] = field(default_factory=list)
    # What Score was sent for each option: logged with the impression as it was scored.
    scored: list[prediction_pb2.ScoreCandidate] = field(default_factory=list)


@dataclass
class Pick:
    """The copy chosen for a slot, its model score, the policy's choice (propensity, posterior
    mean) and the options not chosen (logged for off-policy evaluation)."""

    option: CopyOption
    score: prediction_pb2.CandidateScore
    choice: bandit.Choice
    alternatives: list[CopyOption]
    repeat_factor: float = 1.0  # frequency capping: < 1 when the shopper was shown it lately
    arms: list[bandit.VariantArm] = field(default_factory=list)  # what the choice was among
    groups: dict[str, bandit.LiftStats] = field(default_factory=dict)

    @property
    def ranking_ctr(self) -> float:
        """The CTR ranking uses: the posterior mean, discounted for recent repeats."""
        return self.choice.posterior_mean * self.repeat_factor


@dataclass
class RecommendCall:
    """One Recommend request while it is answered: what was asked, who asked, the budget's end
    and the reply being built. Every step takes it, so all steps cut their downstream timeouts
    from one budget and record their degradations on one reply."""

    request: F.RecommendRequest
    metadata: Metadata  # forwarded with every downstream call
    tenant: str
    end: float  # time.monotonic() by which the reply must be ready
    rng: random.Random  # seeded by the request id, so its copy choices can be reproduced
    reply: F.RecommendResponse

    @classmethod
    def start(
        cls, request: F.RecommendRequest, metadata: Metadata, tenant: str, budget_s: float
    ) -> RecommendCall:
        """Keeps 5% of the budget for the reply itself."""
        end = time.monotonic() + budget_s * 0.95
        reply = F.RecommendResponse(request_id=f"rq_{uuid.uuid4().hex[:20]}")
        return cls(request, metadata, tenant, end, random.Random(reply.request_id), reply)

    def left(self, share: float = 1.0) -> float:
        """A share of the seconds left in the budget (at least 1 ms): a downstream timeout."""
        return max(0.001, (self.end - time.monotonic()) * share)

    def degrade(self, component: str, fallback: str, error: BaseException | str) -> None:
        """Records that `component` failed and `fallback` was served instead."""
        reason = error if isinstance(error, str) else describe(error)
        self.reply.degradations.add(component=component, fallback=fallback, reason=reason)


class Recommender:
    def __init__(
        self,
        store: FusionStore,
        downstream: Downstream,
        settings: FusionSettings,
        runner: BlockingRunner,
    ) -> None:
        self.store = store
        self.down = downstream
        self.settings = settings
        self.runner = runner
        self._popular: dict[str, list[common_pb2.Item]] = {}  # tenant -> last good recall
        self._queued: dict[str, float] = {}  # pre-generation requests sent recently
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def recommend(
        self, req: F.RecommendRequest, metadata: Metadata, time_left_s: float | None
    ) -> F.RecommendResponse:
        budget_s = (req.latency_budget_ms or self.settings.default_budget_ms) / 1000
        if time_left_s is not None:
            budget_s = min(budget_s, time_left_s)
        call = RecommendCall.start(req, metadata, current_tenant(), budget_s)
        reply = call.reply

        experiment, arm = await self._assignment(call)
        strategy: F.ArmStrategy.ValueType = F.ARM_STRATEGY_PERSONALISED_BANDIT
        if experiment is not None and arm is not None:
            reply.assignment.experiment_id, reply.assignment.arm_id = (
                experiment.experiment_id,
                arm.arm_id,
            )
            strategy = F.ArmStrategy.Value(arm.strategy)
        versions = CopyVersions.of(arm)

        profile, items = await self._profile_and_items(call)
        reply.cold_start = profile.cold_start
        slots = self._eligible_slots(items, req)
        if not slots:
            return reply
        segment = primary_segment(profile)
        await self._attach_copy(call, slots, profile, segment, strategy, versions)
        model_version = await self._score(call, slots, profile)
        chosen = await self._choose(call, slots, strategy, segment)
        objective = OBJECTIVES.get(req.objective, self.settings.objective)
        ranked = rank(
            [
                RankCandidate(
                    s.item.item_id,
                    _top(s.item),
                    s.item.brand,
                    s.item.price,
                    s.item.stock > 0,
                    pick.ranking_ctr,
                    pick.score.p_cvr,
                )
                for s, pick in zip(slots, chosen, strict=True)
            ],
            n=req.n or 10,
            config=RankingConfig(
                objective=objective, diversity_lambda=self.settings.diversity_lambda
            ),
            excluded_ids=set(req.filter.exclude_item_ids),
        )
        by_id = {s.item.item_id: (s, pick) for s, pick in zip(slots, chosen, strict=True)}
        self._propensities([by_id[r.item_id][1] for r in ranked], call.rng)
        served: list[ServedRow] = []
        now = time.time()
        snapshot = request_snapshot(req, profile)  # once per request, not per item
        for r in ranked:
            slot, pick = by_id[r.item_id]
            option, score = pick.option, pick.score
            impression_id = f"im_{uuid.uuid4().hex[:20]}"
            reply.recommendations.add(
                rank=r.rank,
                item_id=r.item_id,
                title=slot.item.title,
                price=slot.item.price,
                currency_code=slot.item.currency_code or "USD",
                copy=F.CopyChoice(
                    creative_id=option.creative_id,
                    text=option.text,
                    source=option.source,
                    template_version=option.template_version,
                    angle=option.angle,
                    segment=option.segment,
                    propensity=pick.choice.propensity,
                    posterior_ctr=pick.choice.posterior_mean,
                ),
                p_ctr=score.p_ctr,
                p_cvr=score.p_cvr,
                expected_value=r.objective_value,
                model_version=model_version,
                impression_id=impression_id,
                reasons=self._reasons(slot, profile, segment, score, req.context.locale),
            )
            served.append(
                ServedRow(
                    impression_id=impression_id,
                    request_id=reply.request_id,
                    user_id=req.user_id,
                    item_id=r.item_id,
                    creative_id=option.creative_id,
                    segment=segment,
                    experiment_id=reply.assignment.experiment_id,
                    arm_id=reply.assignment.arm_id,
                    p_ctr=score.p_ctr,
                    p_cvr=score.p_cvr,
                    price=slot.item.price,
                    copy_source=F.CopySource.Name(option.source),
                    model_version=model_version,
                    serve_time=now,
                    features=_served_features(snapshot, slot, pick),
                    angle=option.angle,
                )
            )
        await self.runner.run(self.store.log_served, call.tenant, served)
        return reply

    # ---- steps ---------------------------------------------------------------------------

    async def _assignment(
        self, call: RecommendCall
    ) -> tuple[ExperimentRecord | None, ArmSpec | None]:
        req, tenant = call.request, call.tenant
        running = await self.runner.run(self.store.running_experiments, tenant)
        if req.experiment_id:
            running = [e for e in running if e.experiment_id == req.experiment_id]
        if not running:
            return None, None
        exp = running[0]
        arm_id = experiments.assign(
            req.user_id,
            f"{tenant}/{exp.experiment_id}",
            [(a.arm_id, a.traffic_weight) for a in exp.arms],
        )
        await self.runner.run(
            self.store.remember_assignment,
            tenant,
            exp.experiment_id,
            req.user_id,
            arm_id,
            time.time(),
        )
        return exp, next(a for a in exp.arms if a.arm_id == arm_id)

    async def _profile_and_items(
        self, call: RecommendCall
    ) -> tuple[common_pb2.UserProfile, list[common_pb2.Item]]:
        """The profile and the candidate items, fetched together; a failed profile degrades to
        cold start, failed recall to the tenant's last good recall (or Unavailable)."""
        req, metadata, tenant = call.request, call.metadata, call.tenant
        profile_call: Awaitable[profile_pb2.GetUserProfileResponse]
        profile_call = self.down.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id=req.user_id),
            metadata=metadata,
            timeout=call.left(0.4),
        )
        items_call: Awaitable[profile_pb2.GetItemsResponse | profile_pb2.RecallItemsResponse]
        if req.candidate_item_ids:
            items_call = self.down.profile.GetItems(
                profile_pb2.GetItemsRequest(item_ids=list(req.candidate_item_ids)),
                metadata=metadata,
                timeout=call.left(0.4),
            )
        else:
            items_call = self.down.profile.RecallItems(
                profile_pb2.RecallItemsRequest(
                    user_id=req.user_id,
                    k=max(self.settings.recall_k, 3 * (req.n or 10)),
                    filter=req.filter,
                ),
                metadata=metadata,
                timeout=call.left(0.4),
            )
        profile_reply, items_reply = await asyncio.gather(
            profile_call, items_call, return_exceptions=True
        )
        profile: common_pb2.UserProfile
        if isinstance(profile_reply, BaseException):
            call.degrade("profile", "cold-start profile", profile_reply)
            profile = common_pb2.UserProfile(user_id=req.user_id, cold_start=True)
        else:
            profile = profile_reply.profile
        items: list[common_pb2.Item]
        if isinstance(items_reply, BaseException):
            cached = self._popular.get(tenant)
            if not cached:
                raise Unavailable(
                    f"no candidates: the profile service is unavailable ({describe(items_reply)})",
                    retry_after_s=1.0,
                )
            call.degrade("profile", "cached candidates", items_reply)
            wanted = set(req.candidate_item_ids)
            items = [i for i in cached if not wanted or i.item_id in wanted]
        elif isinstance(items_reply, profile_pb2.GetItemsResponse):
            items = list(items_reply.items)
        else:
            items = [r.item for r in items_reply.items]
            if items_reply.cold_start or tenant not in self._popular:
                self._popular[tenant] = items
        return profile, items

    def _eligible_slots(
        self, items: Sequence[common_pb2.Item], req: F.RecommendRequest
    ) -> list[Slot]:
        excluded = set(req.filter.exclude_item_ids)
        return [
            Slot(item, rank + 1)
            for rank, item in enumerate(items)
            if item.stock > 0 and item.item_id not in excluded
        ]

    async def _attach_copy(
        self,
        call: RecommendCall,
        slots: Sequence[Slot],
        profile: common_pb2.UserProfile,
        segment: str,
        strategy: F.ArmStrategy.ValueType,
        versions: CopyVersions = ANY_VERSION,
    ) -> None:
        """Copy options per slot: the approved pool, else inline generation while the budget
        allows (the rest is queued for pre-generation), else a local template. An arm that
        pins versions asks each step for those versions only; items whose pool has none of
        them fall back the same way, and the reply says how many."""
        ctx = call.request.context
        if strategy == F.ARM_STRATEGY_GENERIC_COPY:
            for s in slots:
                s.options = [generic_copy(s.item, ctx.locale)]
            return
        pinned, pool_read = versions.pinned, False
        try:
            pool = await self.down.generation.GetCreatives(
                generation_pb2.GetCreativesRequest(
                    queries=[
                        generation_pb2.CreativeQuery(
                            item_id=s.item.item_id, item_version=s.item.version
                        )
                        for s in slots
                    ],
                    channel=ctx.channel,
                    locale=ctx.locale,
                    segment=segment,
                    max_per_item=5,
                    read_mask=POOL_FIELDS_PINNED if pinned else POOL_FIELDS,
                    model_version=versions.copywriter,
                    template_version=versions.template,
                ),
                metadata=call.metadata,
                timeout=call.left(0.25),
            )
            for s, found in zip(slots, pool.items, strict=True):
                s.options = [
                    CopyOption(
                        c.creative_id,
                        c.text,
                        F.COPY_SOURCE_POOL,
                        c.template_version,
                        c.angle,
                        c.segment,
                    )
                    for c in found.creatives
                    if not pinned or versions.admits(c.model_version, c.template_version)
                ]
            pool_read = True
        except Exception as exc:
            call.degrade("generation", "fallback copy", exc)
        missing = [s for s in slots if not s.options]
        if missing and pinned and pool_read:
            call.degrade(
                "copy",
                "copy generated now or a template",
                f"no creatives of {versions.describe()} for {len(missing)} "
                f"item{'' if len(missing) == 1 else 's'}",
            )
        if missing:
            self._queue_pregeneration(
                [s.item for s in missing], ctx, segment, call.metadata, versions
            )
            inline = missing[: self.settings.generate_inline_max]
            if inline and call.left() * 1000 >= self.settings.generate_inline_min_ms:
                await self._generate_inline(call, inline, profile, segment, versions)
        for s in slots:
            if not s.options:
                s.options = [local_fallback(s.item, ctx.channel, ctx.locale)]

    async def _generate_inline(
        self,
        call: RecommendCall,
        slots: Sequence[Slot],
        profile: common_pb2.UserProfile,
        segment: str,
        versions: CopyVersions = ANY_VERSION,
    ) -> None:
        """Generates copy for a few items now (with the arm's versions), all sharing half of
        what is left."""
        ctx = call.request.context
        timeout = call.left(0.5)
        llm_down: list[str] = []  # generation answered with template copy: its LLM was down

        async def one(slot: Slot) -> None:
            reply = await self.down.generation.Generate(
                generation_pb2.GenerateRequest(
                    item=slot.item,
                    channel=ctx.channel,
                    locale=ctx.locale,
                    variant_count=2,
                    audience=generation_pb2.Audience(
                        segment=segment, profile_summary=profile_summary(profile)
                    ),
                    model_version=versions.copywriter,
                    template_version=versions.template,
                ),
                metadata=call.metadata,
                timeout=timeout,
            )
            slot.options = [
                CopyOption(
                    f"gen:{slot.item.item_id}:{n}",
                    v.text,
                    F.COPY_SOURCE_FALLBACK
                    if v.source == generation_pb2.VARIANT_SOURCE_TEMPLATE_FALLBACK
                    else F.COPY_SOURCE_GENERATED,
                    v.template_version,
                    v.angle,
                    segment,
                )
                for n, v in enumerate(reply.variants)
            ]
            # An outage (down or not answering), not a budget too short to ask the model.
            llm_down.extend(
                d for d in reply.degradations if d.startswith("llm:") and "skipped" not in d
            )

        results = await asyncio.gather(*(one(s) for s in slots), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            call.degrade("generation", "fallback copy for items without creatives", errors[0])
        if llm_down:
            call.degrade("llm", "template copy from generation", llm_down[0])

    def _queue_pregeneration(
        self,
        items: Sequence[common_pb2.Item],
        ctx: common_pb2.Context,
        segment: str,
        metadata: Metadata,
        versions: CopyVersions = ANY_VERSION,
    ) -> None:
        """Asks the generation service to fill the pool for these items in the background, at
        most once every 10 minutes per (item version, channel, locale, segment, copywriter
        and template version)."""
        now = time.monotonic()
        fresh = []
        for item in items:
            key = (
                f"{current_tenant()}|{item.item_id}|{item.version}"
                f"|{ctx.channel}|{ctx.locale}|{segment}"
                f"|{versions.copywriter}|{versions.template}"
            )
            if now - self._queued.get(key, -1e9) > 600:
                self._queued[key] = now
                fresh.append(item)
        if not fresh:
            return
        request = generation_pb2.PregenerateCreativesRequest(
            items=fresh,
            channels=[ctx.channel],
            locales=[ctx.locale],
            segments=[segment],
            variants_per_item=3,
            auto_approve=self.settings.auto_approve_pregenerated,
            model_version=versions.copywriter,
            template_version=versions.template,
        )

        async def send() -> None:
            try:
                await self.down.generation.PregenerateCreatives(
                    request, metadata=metadata, timeout=10
                )
            except Exception:
                log.warning("could not queue pre-generation", exc_info=True)

        task = asyncio.create_task(send())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _score(
        self, call: RecommendCall, slots: Sequence[Slot], profile: common_pb2.UserProfile
    ) -> str:
        """One batched score of every (item, copy) option; prior scores when prediction fails.
        Returns the model version that scored."""
        req = call.request
        candidates = []
        for s in slots:
            item = scoring_item(s.item)  # once per item, not per copy option
            s.scored = [
                prediction_pb2.ScoreCandidate(
                    item=item,
                    creative_id=o.creative_id,
                    copy_text=o.text,
                    item_popularity=1.0 / s.popularity_rank,
                )
                for o in s.options
            ]
            candidates += s.scored
        scores: list[prediction_pb2.CandidateScore]
        try:
            reply = await self.down.prediction.Score(
                prediction_pb2.ScoreRequest(
                    user_id=req.user_id,
                    profile=profile,
                    context=req.context,
                    candidates=candidates,
                ),
                metadata=call.metadata,
                timeout=call.left(0.9),
            )
            scores = list(reply.scores)
            version = str(reply.model_version)
        except Exception as exc:
            call.degrade("prediction", "prior scores", exc)
            scores = [
                prediction_pb2.CandidateScore(
                    item_id=c.item.item_id,
                    creative_id=c.creative_id,
                    p_ctr=PRIOR_CTR,
                    p_cvr=PRIOR_CVR,
                    p_ctcvr=PRIOR_CTR * PRIOR_CVR,
                )
                for c in candidates
            ]
            version = PRIOR_VERSION
        it = iter(scores)
        for s in slots:
            s.scores = [next(it) for _ in s.options]
        return version

    async def _choose(
        self,
        call: RecommendCall,
        slots: Sequence[Slot],
        strategy: F.ArmStrategy.ValueType,
        segment: str,
    ) -> list[Pick]:
        """One copy option per slot, by the arm's selection mode (Thompson by default). Every
        mode reads the same posteriors (the predicted CTR corrected by what was observed for the
        creative and its (segment, angle)), so ranking by their means is the same in each arm;
        only how the copy is picked differs. Items the shopper was served lately are
        discounted for ranking (frequency capping, `repeat_discount`)."""
        mode = STRATEGY_MODES.get(strategy, bandit.SelectionMode.THOMPSON)
        options = [o for s in slots for o in s.options]
        state = await self.runner.run(
            self.store.selection_state,
            call.tenant,
            segment,
            [o.creative_id for o in options],
            [o.angle for o in options],
            call.request.user_id,
            [s.item.item_id for s in slots],
            time.time() - self.settings.repeat_window_days * 86_400,
        )
        stats = state.creatives
        groups = {bandit.group_key(segment, a): st for a, st in state.groups.items()}
        empty = bandit.LiftStats()
        slot_arms = []
        for s in slots:
            arms = []
            for o, sc in zip(s.options, s.scores, strict=True):
                seen = stats.get(o.creative_id, empty)
                arms.append(
                    bandit.VariantArm(
                        o.creative_id,
                        sc.p_ctr,
                        seen.impressions,
                        seen.clicks,
                        seen.expected_clicks,
                        bandit.group_key(segment, o.angle),
                    )
                )
            # content-effect helper (issue 13.4): copy_quality tilts the prior between copies
            slot_arms.append(bandit.with_copy_effect(arms, [sc.copy_quality for sc in s.scores]))
        pseudo, strength = self.settings.bandit_pseudo_count, self.settings.bandit_group_strength
        if mode == bandit.SelectionMode.THOMPSON:
            # Every slot in one vectorised round; propensities later, for the served items.
            choices = bandit.thompson_choices(slot_arms, call.rng, pseudo, groups, strength)
        else:
            choices = [
                bandit.choose(mode, arms, call.rng, pseudo, groups, strength) for arms in slot_arms
            ]
        picks = []
        for s, arms, choice in zip(slots, slot_arms, choices, strict=True):
            index = next(i for i, o in enumerate(s.options) if o.creative_id == choice.creative_id)
            alternatives = [o for i, o in enumerate(s.options) if i != index]
            repeats = state.exposures.get(s.item.item_id, 0)
            discount = (1.0 + repeats) ** -self.settings.repeat_discount
            picks.append(
                Pick(
                    s.options[index], s.scores[index], choice, alternatives, discount, arms, groups
                )
            )
        return picks

    def _propensities(self, picks: Sequence[Pick], rng: random.Random) -> None:
        """A Thompson choice's propensity takes 200 more draws per item: only the items that
        are served (n of the ~50 candidates) need it, all in one vectorised draw."""
        todo = [pick for pick in picks if pick.choice.propensity == 0.0]
        if not todo:
            return
        estimates = bandit.thompson_propensities(
            [(pick.arms, pick.choice.creative_id) for pick in todo],
            rng,
            self.settings.bandit_pseudo_count,
            todo[0].groups,
            self.settings.bandit_group_strength,
        )
        for pick, propensity in zip(todo, estimates, strict=True):
            pick.choice = replace(pick.choice, propensity=propensity)

    def _reasons(
        self,
        slot: Slot,
        profile: common_pb2.UserProfile,
        segment: str,
        score: prediction_pb2.CandidateScore,
        locale: str,
    ) -> list[str]:
        evidence = ReasonEvidence(
            item_category=_top(slot.item),
            item_brand=slot.item.brand,
            item_price=slot.item.price,
            item_list_price=slot.item.list_price,
            user_top_categories=[(a.key, a.share) for a in profile.category_affinities[:3]],
            user_top_brands=[(a.key, a.share) for a in profile.brand_affinities[:3]],
            user_price_band=PRICE_BAND_NAMES.get(profile.price_band, ""),
            popularity_rank=slot.popularity_rank,
            segment=segment,
            top_features=[(f.feature, f.contribution) for f in score.top_features],
            copy_effect=bandit.copy_effect_among(score, slot.scores),  # content-effect (13.4)
        )
        return reasons_for(evidence, locale=locale or DEFAULT_LOCALE)


def scoring_item(item: common_pb2.Item) -> common_pb2.Item:
    """What Score reads of an item (ScoreCandidate's contract: id, category path, brand,
    prices). The rest of the catalog entry (title, selling points, attributes) would only be
    copied, sent and parsed for each of the ~200 candidates of a request."""
    return common_pb2.Item(
        item_id=item.item_id,
        category_path=item.category_path,
        brand=item.brand,
        price=item.price,
        list_price=item.list_price,
    )


def primary_segment(profile: common_pb2.UserProfile) -> str:
    """The segment copy is written and learned for: the first behavioural label (category fan
    labels are too many to keep separate posteriors for)."""
    for label in profile.segments:
        if not label.startswith("fan:"):
            return label
    return "new_user" if profile.cold_start else ""


def profile_summary(profile: common_pb2.UserProfile) -> str:
    if profile.cold_start:
        return "new shopper"
    cats = ", ".join(a.key for a in profile.category_affinities[:2])
    band = PRICE_BAND_NAMES.get(profile.price_band, "")
    return f"likes {cats}; price band {band}".strip()[:500]


def _top(item: common_pb2.Item) -> str:
    return item.category_path[0] if item.category_path else ""


def generic_copy(item: common_pb2.Item, locale: str) -> CopyOption:
    """The same copy for everyone (the control arm): the title and the first selling point in
    the shopper's language, checked like generated copy (banned claims with look-alike letters
    folded, injected instructions, contact details, unsupported claims); the title alone or a
    safe template when the line would fail (generation.served.generic_item_copy)."""
    brief = _brief(item, common_pb2.CHANNEL_UNSPECIFIED, locale)
    return CopyOption(f"generic:{item.item_id}", generic_item_copy(brief), F.COPY_SOURCE_GENERIC)


def _brief(item: common_pb2.Item, channel: common_pb2.Channel.ValueType, locale: str) -> CopyBrief:
    return item_brief(
        item,
        channel=CHANNEL_NAMES.get(channel, DEFAULT_CHANNEL),
        locale=locale_or_default(locale),
        tone="friendly",
    )


def local_fallback(
    item: common_pb2.Item, channel: common_pb2.Channel.ValueType, locale: str
) -> CopyOption:
    """A template copy built here when neither the pool nor generation can help: it passes
    every check generated copy does, else it is a generic line that states nothing."""
    text = safe_fallback(_brief(item, channel, locale))
    return CopyOption(f"fallback:{item.item_id}", text, F.COPY_SOURCE_FALLBACK, "fallback")


def request_snapshot(req: F.RecommendRequest, profile: common_pb2.UserProfile) -> dict[str, Any]:
    """The part of every served row's features shared by the whole request (the profile and
    context as served); the store keeps it once per request."""
    return {
        "profile": json_format.MessageToDict(profile, preserving_proto_field_name=True),
        "context": json_format.MessageToDict(req.context, preserving_proto_field_name=True),
    }


def _served_features(snapshot: dict[str, Any], slot: Slot, pick: Pick) -> dict[str, Any]:
    """What PredictionService needs to log this impression exactly as it was scored (the
    candidate Score saw, popularity included: training sees what serving saw), with the
    choice's propensity and the copy not chosen (for propensity weighting and off-policy
    estimates)."""
    candidate = next(
        (c for c in slot.scored if c.creative_id == pick.option.creative_id), None
    ) or prediction_pb2.ScoreCandidate(
        item=scoring_item(slot.item),
        creative_id=pick.option.creative_id,
        copy_text=pick.option.text,
    )
    return {
        **snapshot,
        "candidate": json_format.MessageToDict(candidate, preserving_proto_field_name=True),
        "propensity": round(pick.choice.propensity, 4),
        "alternatives": [
            {"creative_id": o.creative_id, "copy_text": o.text} for o in pick.alternatives
        ],
    }
