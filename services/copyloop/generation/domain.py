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

from copyloop.common import tenancy
from copyloop.common.db import BlockingRunner, ping
from copyloop.common.errors import FailedPrecondition
from copyloop.common.tenancy import current_tenant
from copyloop.common.tracing import tracer
from copyloop.generation.claims import Promotion
from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.length import effective_max_chars
from copyloop.generation.llm_client import (
    LLMError,
    LLMOutput,
    LLMTimeoutError,
    LLMVersionNotFoundError,
    SamplingParams,
    TritonLLMClient,
)
from copyloop.generation.pipeline import (
    SOURCE_TEMPLATE_FALLBACK,
    CheckedVariant,
    PipelineResult,
    PipelineSettings,
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
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNIT_DONE,
    UNIT_FAILED,
    CreativeRecord,
    CreativeStore,
    Idempotency,
    JobRecord,
    NewCreative,
    NewUnit,
)

log = logging.getLogger("copyloop.generation")

# Generate keeps this share of its deadline (at least RESERVE_MIN_S) for its own fallback: the
# LLM gets the rest, so a slow or hung model still leaves time to answer with template copy.
RESERVE_SHARE = 0.2
RESERVE_MIN_S = 0.05


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
    model_version: str = ""  # the copywriter version in Triton; "" = the newest loaded


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
    # What was degraded, e.g. "llm: unavailable (...); template copy" (empty when nothing was).
    degradations: list[str] = field(default_factory=list)
    # Per raw output (CheckedVariant.raw_index): the model version Triton says wrote it.
    raw_versions: list[str] = field(default_factory=list)

    def version_of(self, variant: CheckedVariant) -> str:
        """The copywriter version that wrote a model variant (Triton's answer, per output)."""
        index = variant.raw_index
        if index is not None and 0 <= index < len(self.raw_versions) and self.raw_versions[index]:
            return self.raw_versions[index]
        return self.model_version

    @property
    def llm_down(self) -> bool:
        """The LLM is configured but could not write this copy (down or out of time)."""
        return any(d.startswith("llm:") for d in self.degradations)


# The caller's deadline left no time to ask the model: not an outage, but still said.
SKIPPED = "skipped (the deadline left no time for the model)"


def llm_degradation(exc: BaseException | str) -> str:
    """How an LLM failure is listed in a reply's degradations."""
    if isinstance(exc, str):
        return f"llm: {exc}; template copy"
    kind = "out of time" if isinstance(exc, LLMTimeoutError) else "unavailable"
    return f"llm: {kind} ({str(exc)[:200]}); template copy"


def version_missing(exc: LLMVersionNotFoundError) -> FailedPrecondition:
    """A copywriter version Triton does not serve. FAILED_PRECONDITION, not INVALID_ARGUMENT
    (the request is well formed; the version can be published and loaded later, and then the
    same request succeeds) nor NOT_FOUND (the RPC's resource is the item, not the model): the
    caller must not get template copy in its place, which would blur an A/B of copywriters."""
    loaded = ", ".join(exc.loaded) or "none"
    return FailedPrecondition(
        f"copywriter model version {exc.version} is not loaded in Triton (loaded: {loaded}): "
        "publish and load it (copyloop copywriter cycle) or leave model_version empty",
        "MODEL_VERSION",
        f"models/copywriter/versions/{exc.version}",
    )


def unsatisfiable(result: PipelineResult) -> FailedPrecondition:
    """No copy can meet the request's constraints (e.g. max_chars 1): retrying cannot help."""
    return FailedPrecondition(
        "no compliant copy can satisfy the constraints (max_chars "
        f"{result.max_chars}, must-include terms and disclaimer): relax them",
        "CONSTRAINTS",
        "constraints",
    )


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the frozen dataclasses hold."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _build(cls: Any, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _tuples(v) for k, v in data.items() if k in names})


def request_to_json(request: GenerationRequest) -> dict[str, Any]:
    """A generation request as JSON, stored with a pre-generation job so it can resume."""
    return dataclasses.asdict(request)


def request_from_json(data: dict[str, Any]) -> GenerationRequest:
    """The inverse of `request_to_json` (unknown keys, from a newer version, are ignored)."""
    promotion = data.get("promotion")
    top = {k: v for k, v in data.items() if k not in ("brief", "constraints", "sampling")}
    top["promotion"] = _build(Promotion, promotion) if promotion else None
    request: GenerationRequest = _build(
        GenerationRequest,
        {
            **top,
            "brief": _build(CopyBrief, data["brief"]),
            "constraints": _build(CopyConstraints, data["constraints"]),
            "sampling": _build(SamplingParams, data["sampling"]),
        },
    )
    return request


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
        pipeline_settings: PipelineSettings = PipelineSettings(),
    ) -> None:
        self.store = store
        self.pipeline_settings = pipeline_settings
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

    async def check_model_version(self, version: str) -> None:
        """FAILED_PRECONDITION when Triton is up and does not serve `version`; nothing when it
        does, when none is named, or when Triton cannot be asked now (the generation itself
        then degrades as usual)."""
        if not version or self.llm is None:
            return
        try:
            await self.llm.check_version(version, timeout_s=2.0)
        except LLMVersionNotFoundError as exc:
            raise version_missing(exc) from exc
        except LLMError:
            return

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
            span.set_attribute("llm.model_version", request.model_version)
            calls = [
                self.llm.generate(
                    prompt,
                    self._sampling(request, offset + i),
                    timeout_s=timeout_s,
                    model_version=request.model_version,
                )
                for i in range(count)
            ]
            return list(await asyncio.gather(*calls))

    async def generate(
        self, request: GenerationRequest, timeout_s: float | None = None, *, offline: bool = False
    ) -> GenerationResult:
        """Model copy checked and topped up with template copy. The LLM gets the deadline less
        a reserve (RESERVE_SHARE, at least RESERVE_MIN_S) kept for the fallback, so a model
        that is down, slow or hung still leaves time to answer; its failure is listed in
        `degradations`. FAILED_PRECONDITION when no copy can meet the constraints. `offline`
        (pre-generation: nobody waits) allows more rounds and a longer budget, so template copy
        fills a pool slot only when the model really cannot."""
        started = time.perf_counter()
        ceiling = self.settings.pregeneration_timeout_s if offline else self.settings.llm_timeout_s
        budget = min(timeout_s or ceiling, ceiling)
        llm_deadline = started + budget - max(RESERVE_MIN_S, RESERVE_SHARE * budget)
        prompt = self._prompt(request)
        wanted = request.variant_count
        raw: list[RawOutput] = []
        raw_versions: list[str] = []
        result: PipelineResult | None = None
        llm_unavailable = self.llm is None
        degradations: list[str] = []
        existing = await self._existing_texts(request)
        rounds = 1 + (
            self.settings.pregeneration_rounds if offline else self.settings.regeneration_rounds
        )
        for attempt in range(rounds if self.llm is not None else 0):
            missing = wanted if result is None else result.shortfall(wanted)
            left = llm_deadline - time.perf_counter()
            if missing == 0:
                break
            if left <= 0.05:
                if not raw:  # the model never got a chance (the caller's deadline): say so
                    llm_unavailable = True
                    degradations.append(llm_degradation(SKIPPED))
                break
            try:
                outputs = await self._ask(
                    prompt.text, request, missing * self.settings.oversample, len(raw), left
                )
            except LLMVersionNotFoundError as exc:
                raise version_missing(exc) from exc
            except LLMError as exc:
                log.warning("LLM unavailable; using fallbacks", extra={"error": str(exc)})
                llm_unavailable = not raw
                degradations.append(llm_degradation(exc))
                break
            raw += [
                RawOutput(o.text, o.cumulative_logprob, o.num_output_tokens, attempt)
                for o in outputs
            ]
            raw_versions += [o.model_version for o in outputs]
            result = process_variants(
                request.brief,
                request.constraints,
                raw,
                self.pipeline_settings,
                existing_texts=existing,
                promotion=request.promotion,
            )
        if result is None:
            result = process_variants(
                request.brief, request.constraints, [], existing_texts=existing
            )
        result = fill_with_fallbacks(result, request.brief, wanted)
        if not result.variants:
            raise unsatisfiable(result)
        return GenerationResult(
            variants=result.variants[:wanted],
            template_id=prompt.template_id,
            template_version=prompt.template_version,
            model_name=self.settings.model_name,
            model_version=next((v for v in raw_versions if v), "")
            or request.model_version
            or self.model_version,
            llm_unavailable=llm_unavailable,
            rejected_attempts=len(result.rejected),
            latency_ms=(time.perf_counter() - started) * 1000,
            degradations=degradations,
            raw_versions=raw_versions,
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
        degradations: list[str] = []
        budget = min(timeout_s or self.settings.llm_timeout_s, self.settings.llm_timeout_s)
        if self.llm is not None:
            try:
                async for delta in self.llm.stream(
                    prompt.text,
                    self._sampling(request, 0),
                    timeout_s=max(0.01, budget - max(RESERVE_MIN_S, RESERVE_SHARE * budget)),
                    on_complete=outputs.append,
                    model_version=request.model_version,
                ):
                    yield delta
            except LLMVersionNotFoundError as exc:
                raise version_missing(exc) from exc
            except LLMError as exc:
                log.warning("LLM stream failed; using a fallback", extra={"error": str(exc)})
                llm_unavailable = not outputs
                degradations.append(llm_degradation(exc))
        raw = [RawOutput(o.text, o.cumulative_logprob, o.num_output_tokens) for o in outputs]
        result = fill_with_fallbacks(
            process_variants(
                request.brief,
                request.constraints,
                raw,
                self.pipeline_settings,
                promotion=request.promotion,
            ),
            request.brief,
            1,
        )
        if not result.variants:
            raise unsatisfiable(result)
        on_final(
            GenerationResult(
                variants=result.variants[:1],
                template_id=prompt.template_id,
                template_version=prompt.template_version,
                model_name=self.settings.model_name,
                model_version=next((o.model_version for o in outputs if o.model_version), "")
                or request.model_version
                or self.model_version,
                llm_unavailable=llm_unavailable,
                rejected_attempts=len(result.rejected),
                latency_ms=(time.perf_counter() - started) * 1000,
                degradations=degradations,
                raw_versions=[o.model_version for o in outputs],
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
        key: Idempotency | None = None,
        reply: Callable[[list[CreativeRecord]], bytes] | None = None,
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
                # The version the variant itself reports (Variant.model_version); template
                # copy has none.
                model_version=""
                if variant.source == SOURCE_TEMPLATE_FALLBACK
                else str(as_json.get("model_version", ""))[:32],
            )
            for variant, as_json in variants
        ]
        return await self._runner.run(self.store.add, current_tenant(), news, status, key, reply)

    # ---- idempotency ---------------------------------------------------------------------

    async def replay(self, key: Idempotency) -> bytes | None:
        """The reply a call with this idempotency key already got, or None."""
        if not key.key:
            return None
        return await self._runner.run(self.store.replay, current_tenant(), key)

    async def remember(self, key: Idempotency, reply: bytes) -> bytes:
        """Keeps the reply for the key; returns the one every retry will get."""
        if not key.key:
            return reply
        return await self._runner.run(self.store.remember, current_tenant(), key, reply)

    async def creatives_for(
        self,
        items: Sequence[tuple[str, int]],
        channel: str,
        locale: str,
        segment: str,
        status: str,
        max_per_item: int,
        model_version: str = "",
        template_version: str = "",
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
            model_version,
            template_version,
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
        key: Idempotency | None = None,
    ) -> JobRecord:
        """Persists the job with its units (one per pool slot) and runs it in the background.
        Units whose slot another unfinished job is filling join that job; when all do, that
        job is returned and nothing new runs. A retry with the same idempotency key returns the
        first call's job."""
        tenant = current_tenant()
        units = [
            NewUnit(
                item_id=unit[0].item_id,
                item_version=unit[0].item_version,
                channel=unit[0].brief.channel,
                locale=unit[0].brief.locale,
                segment=unit[0].brief.audience_segment,
                requests=[request_to_json(r) for r in unit],
            )
            for unit in pool_slots(requests)
        ]
        job, created = await self._runner.run(self.store.create_job, tenant, units, status, key)
        if created:
            self._spawn(tenant, job.job_id, status, to_json)
        return job

    async def resume_jobs(
        self, to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]]
    ) -> int:
        """At start-up: runs every job a shutdown or a crash left PENDING or RUNNING from its
        first unit not yet done. Returns how many were resumed."""
        jobs = await self._runner.run(self.store.unfinished_jobs)
        for job in jobs:
            log.info("resuming pre-generation job", extra={"job_id": job.job_id})
            self._spawn(job.tenant, job.job_id, job.creative_status, to_json)
        return len(jobs)

    def _spawn(
        self,
        tenant: str,
        job_id: str,
        status: str,
        to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]],
    ) -> None:
        task = asyncio.create_task(self._run_job(tenant, job_id, status, to_json))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _run_unit(
        self,
        unit: Sequence[GenerationRequest],
        status: str,
        to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]],
    ) -> tuple[str, int, bool]:
        """(unit state, creatives stored, used template copy). A unit whose model copy could
        not be written because the configured LLM was down failed: its template copy is kept
        as DRAFT only, never sent live, and the slot is free for a later job."""
        creatives, template, llm_down = 0, False, False
        for request in unit:
            result = await self.generate(request, offline=True)
            passing = [v for v in result.variants if v.compliance.passed]
            template = template or any(v.source == SOURCE_TEMPLATE_FALLBACK for v in passing)
            llm_down = llm_down or result.llm_down
            stored = await self.store_variants(
                request,
                [(v, to_json(v, result)) for v in passing],
                DRAFT if result.llm_down else status,
            )
            creatives += len(stored)
        return (UNIT_FAILED if llm_down else UNIT_DONE), creatives, template

    async def _run_job(
        self,
        tenant: str,
        job_id: str,
        status: str,
        to_json: Callable[[CheckedVariant, GenerationResult], dict[str, Any]],
    ) -> None:
        """One unit is one pool slot (item version, channel, locale, segment); its angles are
        written one after the other, so each sees the copy the previous one stored. Each unit's
        outcome and the job's counts are committed together, so a resumed job redoes only the
        units not yet recorded. A shutdown leaves the job PENDING with the reason in `error`
        (it resumes at the next start); it never stays RUNNING with nobody running it."""
        tokens = tenancy.bind(tenant, job_id)
        limiter = asyncio.Semaphore(self.settings.pregeneration_concurrency)
        errors: list[str] = []

        async def one(index: int, unit: Sequence[GenerationRequest]) -> None:
            async with limiter:
                try:
                    state, creatives, template = await self._run_unit(unit, status, to_json)
                except Exception as exc:
                    log.exception("pre-generation of one unit failed", extra={"job_id": job_id})
                    state, creatives, template = UNIT_FAILED, 0, False
                    errors.append(str(exc)[:300])
                await self._runner.run(
                    self.store.unit_done, tenant, job_id, index, state, creatives, template
                )

        try:
            await self._runner.run(self.store.set_job_state, tenant, job_id, RUNNING)
            pending = await self._runner.run(self.store.pending_units, tenant, job_id)
            units = [(p.unit_index, [request_from_json(r) for r in p.requests]) for p in pending]
            await asyncio.gather(*(one(index, unit) for index, unit in units))
            job = await self._runner.run(self.store.get_job, tenant, job_id)
            if job.total_count and job.failed_count >= job.total_count:
                reason = errors[0] if errors else "the LLM was unavailable for every unit"
                await self._runner.run(
                    self.store.set_job_state, tenant, job_id, FAILED, f"every unit failed: {reason}"
                )
            else:
                await self._runner.run(self.store.set_job_state, tenant, job_id, SUCCEEDED)
        except asyncio.CancelledError:
            # Shutdown: record it; the units not done stay pending and resume at the next start.
            await self._runner.run(
                self.store.set_job_state,
                tenant,
                job_id,
                PENDING,
                "interrupted by a shutdown; resumes when the service starts again",
            )
            raise
        except Exception as exc:
            log.exception("pre-generation job failed", extra={"job_id": job_id})
            await self._runner.run(self.store.set_job_state, tenant, job_id, FAILED, str(exc)[:500])
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
