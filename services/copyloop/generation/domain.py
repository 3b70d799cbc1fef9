"""GenerationService use cases, independent of gRPC: the LLM loop (generate, check, regenerate,
fall back), streaming previews, the creative pool and pre-generation jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from copyloop.common.db import BlockingRunner, ping
from copyloop.common.errors import Unavailable
from copyloop.common.tenancy import current_tenant
from copyloop.common.tracing import tracer
from copyloop.generation.claims import Promotion
from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.length import effective_max_chars
from copyloop.generation.llm_client import LLMError, LLMOutput, SamplingParams, TritonLLMClient
from copyloop.generation.pipeline import (
    CheckedVariant,
    PipelineResult,
    RawOutput,
    fill_with_fallbacks,
    process_variants,
)
from copyloop.generation.prompts import (
    DEFAULT_TEMPLATE_VERSION,
    CopyBrief,
    RenderedPrompt,
    render_prompt,
)
from copyloop.generation.review import ReviewResult, review_copy
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.store import (
    DRAFT,
    FAILED,
    LIVE,
    RUNNING,
    SUCCEEDED,
    CreativeRecord,
    CreativeStore,
    JobRecord,
    NewCreative,
)

log = logging.getLogger("copyloop.generation")


@dataclass(frozen=True)
class GenerationRequest:
    brief: CopyBrief
    constraints: CopyConstraints
    variant_count: int
    sampling: SamplingParams
    item_id: str
    item_version: int = 0
    store_in_pool: bool = False
    template_version: str = DEFAULT_TEMPLATE_VERSION
    promotion: Promotion | None = None


@dataclass
class GenerationResult:
    variants: list[CheckedVariant]
    template_id: str
    template_version: str
    model_name: str
    model_version: str
    llm_unavailable: bool
    rejected_attempts: int
    latency_ms: float
    creatives: list[CreativeRecord] = field(default_factory=list)


def max_tokens_for(brief: CopyBrief, requested: int) -> int:
    """Enough tokens for the channel's length limit (byte-level BPE: ~3 chars/token in English,
    ~1 char/token in Chinese), with room for a sentence the length check will cut."""
    if requested:
        return requested
    limit = effective_max_chars(brief.channel, brief.locale, brief.max_chars)
    per_token = 1.0 if brief.locale == "zh-CN" else 3.0
    return max(16, min(256, int(limit / per_token * 1.3) + 8))


def pool_slots(requests: Sequence[GenerationRequest]) -> list[list[GenerationRequest]]:
    """Requests grouped by the pool slot they fill, in first-seen order."""
    slots: dict[tuple[str, int, str, str, str], list[GenerationRequest]] = {}
    for r in requests:
        key = (r.item_id, r.item_version, r.brief.channel, r.brief.locale, r.brief.audience_segment)
        slots.setdefault(key, []).append(r)
    return list(slots.values())


class GenerationDomain:
    def __init__(
        self,
        store: CreativeStore,
        settings: GenerationSettings,
        llm: TritonLLMClient | None,
        tokenizer: Any = None,
        model_version: str = "",
    ) -> None:
        self.store = store
        self.settings = settings
        self.llm = llm
        self.tokenizer = tokenizer
        self.model_version = model_version
        self._runner = BlockingRunner(workers=4, name="generation-store")
        self._jobs: set[asyncio.Task[None]] = set()

    # ---- health --------------------------------------------------------------------------

    async def ready(self) -> bool:
        """The service is ready when its pool is: it can serve the pool and fallbacks alone."""
        return await self._runner.run(ping, self.store.engine)

    async def llm_ready(self) -> bool:
        return self.llm is not None and await self.llm.is_ready(timeout_s=2.0)

    async def close(self) -> None:
        for task in list(self._jobs):
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        if self.llm is not None:
            await self.llm.close()
        self._runner.close()

    # ---- generation ----------------------------------------------------------------------

    def _prompt(self, request: GenerationRequest) -> RenderedPrompt:
        return render_prompt(request.brief, self.tokenizer, request.template_version)

    def _sampling(self, request: GenerationRequest, offset: int) -> SamplingParams:
        s = request.sampling
        seed = None if s.seed is None else s.seed + offset
        return dataclasses.replace(
            s, seed=seed, max_tokens=max_tokens_for(request.brief, s.max_tokens)
        )

    async def _ask(
        self, prompt: str, request: GenerationRequest, count: int, offset: int, timeout_s: float
    ) -> list[LLMOutput]:
        """`count` completions in parallel (Triton batches them), each with its own seed."""
        assert self.llm is not None
        with tracer("copyloop.generation").start_as_current_span("triton.generate") as span:
            span.set_attribute("llm.model", self.settings.model_name)
            span.set_attribute("llm.requests", count)
            calls = [
                self.llm.generate(prompt, self._sampling(request, offset + i), timeout_s=timeout_s)
                for i in range(count)
            ]
            return list(await asyncio.gather(*calls))

    async def generate(
        self, request: GenerationRequest, timeout_s: float | None = None
    ) -> GenerationResult:
        started = time.perf_counter()
        budget = min(timeout_s or self.settings.llm_timeout_s, self.settings.llm_timeout_s)
        deadline = started + budget
        prompt = self._prompt(request)
        wanted = request.variant_count
        raw: list[RawOutput] = []
        result: PipelineResult | None = None
        llm_unavailable = self.llm is None
        existing = await self._existing_texts(request)
        rounds = 1 + self.settings.regeneration_rounds
        for attempt in range(rounds if self.llm is not None else 0):
            missing = wanted if result is None else result.shortfall(wanted)
            left = deadline - time.perf_counter()
            if missing == 0 or left <= 0.05:
                break
            try:
                outputs = await self._ask(prompt.text, request, missing, len(raw), left)
            except LLMError as exc:
                log.warning("LLM unavailable; using fallbacks", extra={"error": str(exc)})
                llm_unavailable = not raw
                break
            raw += [
                RawOutput(o.text, o.cumulative_logprob, o.num_output_tokens, attempt)
                for o in outputs
            ]
            result = process_variants(
                request.brief,
                request.constraints,
                raw,
                existing_texts=existing,
                promotion=request.promotion,
            )
        if result is None:
            result = process_variants(
                request.brief, request.constraints, [], existing_texts=existing
            )
        result = fill_with_fallbacks(result, request.brief, wanted)
        if not result.variants:
            raise Unavailable(
                "no compliant copy could be produced: the model is unavailable and no safe "
                "template fits the constraints",
                retry_after_s=5.0,
            )
        return GenerationResult(
            variants=result.variants[:wanted],
            template_id=prompt.template_id,
            template_version=prompt.template_version,
            model_name=self.settings.model_name,
            model_version=self.model_version,
            llm_unavailable=llm_unavailable,
            rejected_attempts=len(result.rejected),
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def stream(
        self,
        request: GenerationRequest,
        on_final: Callable[[GenerationResult], None],
        timeout_s: float | None = None,
    ) -> AsyncIterator[str]:
        """Yields the raw text as the model writes it; `on_final` then gets the checked variant
        (the text after checks, or a fallback when the raw text failed them)."""
        started = time.perf_counter()
        prompt = self._prompt(request)
        outputs: list[LLMOutput] = []
        llm_unavailable = self.llm is None
        if self.llm is not None:
            try:
                async for delta in self.llm.stream(
                    prompt.text,
                    self._sampling(request, 0),
                    timeout_s=min(
                        timeout_s or self.settings.llm_timeout_s, self.settings.llm_timeout_s
                    ),
                    on_complete=outputs.append,
                ):
                    yield delta
            except LLMError as exc:
                log.warning("LLM stream failed; using a fallback", extra={"error": str(exc)})
                llm_unavailable = not outputs
        raw = [RawOutput(o.text, o.cumulative_logprob, o.num_output_tokens) for o in outputs]
        result = fill_with_fallbacks(
            process_variants(request.brief, request.constraints, raw, promotion=request.promotion),
            request.brief,
            1,
        )
        if not result.variants:
            raise Unavailable("no compliant copy could be produced", retry_after_s=5.0)
        on_final(
            GenerationResult(
                variants=result.variants[:1],
                template_id=prompt.template_id,
                template_version=prompt.template_version,
                model_name=self.settings.model_name,
                model_version=self.model_version,
                llm_unavailable=llm_unavailable,
                rejected_attempts=len(result.rejected),
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        )

    async def _existing_texts(self, request: GenerationRequest) -> list[str]:
        """Live copy already in the pool for this slot: new variants must not repeat it."""
        pool = await self._runner.run(
            self.store.by_items,
            current_tenant(),
            [(request.item_id, request.item_version)],
            request.brief.channel,
            request.brief.locale,
            request.brief.audience_segment,
            LIVE,
            20,
        )
        return [c.text for c in pool.get(request.item_id, [])]

    # ---- pool ----------------------------------------------------------------------------

    async def store_variants(
        self,
        request: GenerationRequest,
        variants: Sequence[tuple[CheckedVariant, dict[str, Any]]],
        status: str = DRAFT,
    ) -> list[CreativeRecord]:
        news = [
            NewCreative(
                item_id=request.item_id,
                item_version=request.item_version,
                channel=request.brief.channel,
                locale=request.brief.locale,
                segment=request.brief.audience_segment,
                template_version=request.template_version,
                text=variant.text,
                quality=variant.quality.overall,
                variant=as_json,
            )
            for variant, as_json in variants
        ]
        return await self._runner.run(self.store.add, current_tenant(), news, status)

    async def creatives_for(
        self,
        items: Sequence[tuple[str, int]],
        channel: str,
        locale: str,
        segment: str,
        status: str,
        max_per_item: int,
    ) -> dict[str, list[CreativeRecord]]:
        return await self._runner.run(
            self.store.by_items,
            current_tenant(),
            items,
            channel,
            locale,
            segment,
            status,
            max_per_item,
        )

    async def list_creatives(
        self, item_id: str, status: str, after: str, limit: int
    ) -> list[CreativeRecord]:
        return await self._runner.run(
            self.store.list, current_tenant(), item_id, status, after, limit
        )

    async def set_status(
        self, creative_id: str, status: str, actor: str, reason: str
    ) -> CreativeRecord:
        return await self._runner.run(
            self.store.set_status, current_tenant(), creative_id, status, actor, reason
        )

    # ---- pre-generation jobs -------------------------------------------------------------

    async def start_job(
        self,
        requests: Sequence[GenerationRequest],
        status: str,
        to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]],
    ) -> JobRecord:
        tenant = current_tenant()
        units = pool_slots(requests)
        job = await self._runner.run(self.store.create_job, tenant, len(units))
        task = asyncio.create_task(self._run_job(tenant, job.job_id, units, status, to_json))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return job

    async def _run_job(
        self,
        tenant: str,
        job_id: str,
        units: Sequence[Sequence[GenerationRequest]],
        status: str,
        to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]],
    ) -> None:
        """One unit is one pool slot (item version, channel, locale, segment); its angles are
        written one after the other, so each sees the copy the previous one stored."""
        from copyloop.common import tenancy

        tokens = tenancy.bind(tenant, job_id)
        counts = {"done_count": 0, "failed_count": 0, "creative_count": 0}
        limiter = asyncio.Semaphore(self.settings.pregeneration_concurrency)
        progress_lock = asyncio.Lock()

        async def one(unit: Sequence[GenerationRequest]) -> None:
            async with limiter:
                try:
                    for request in unit:
                        result = await self.generate(request)
                        passing = [v for v in result.variants if v.compliance.passed]
                        stored = await self.store_variants(
                            request, [(v, to_json(v, result)) for v in passing], status
                        )
                        counts["creative_count"] += len(stored)
                except Exception:
                    log.exception("pre-generation of one item failed", extra={"job_id": job_id})
                    counts["failed_count"] += 1
                counts["done_count"] += 1
                async with progress_lock:
                    await self._runner.run(self.store.update_job, tenant, job_id, **counts)

        try:
            await self._runner.run(self.store.update_job, tenant, job_id, state=RUNNING)
            await asyncio.gather(*(one(u) for u in units))
            await self._runner.run(self.store.update_job, tenant, job_id, state=SUCCEEDED, **counts)
        except Exception as exc:
            log.exception("pre-generation job failed", extra={"job_id": job_id})
            await self._runner.run(
                self.store.update_job, tenant, job_id, state=FAILED, error=str(exc)[:500]
            )
        finally:
            tenancy.unbind(tokens)

    def review(
        self,
        text: str,
        brief: CopyBrief,
        constraints: CopyConstraints,
        promotion: Promotion | None,
    ) -> ReviewResult:
        """ReviewCopy: every check on a text someone wrote; nothing is stored."""
        return review_copy(text, brief, constraints, promotion)

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._runner.run(self.store.get_job, current_tenant(), job_id)
