"""GenerationService gRPC servicer: validates, converts, calls the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from copyloop.common import pagination
from copyloop.common.deadlines import remaining_s
from copyloop.common.errors import Violations
from copyloop.common.idempotency import validate_key
from copyloop.generation import messages
from copyloop.generation.domain import GenerationDomain, GenerationResult
from copyloop.generation.prompts import list_templates
from copyloop.generation.store import APPROVED, DRAFT, LIVE, RETIRED
from copyloop.v1 import generation_pb2, generation_pb2_grpc

G = generation_pb2
FULL_NAME = G.DESCRIPTOR.services_by_name["GenerationService"].full_name
MAX_QUERIES = 1000
MAX_PREGENERATION_UNITS = 10_000


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, domain: GenerationDomain) -> None:
        self.domain = domain

    async def Generate(
        self, request: G.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> G.GenerateResponse:
        v = Violations()
        parsed = messages.generation_request(request, v)
        v.raise_if_any()
        assert parsed is not None
        result = await self.domain.generate(
            parsed, timeout_s=remaining_s(context, self.domain.settings.llm_timeout_s)
        )
        variants = [
            messages.variant_to_proto(x, result, result.latency_ms / max(1, len(result.variants)))
            for x in result.variants
        ]
        if request.store_in_pool:
            stored = await self.domain.store_variants(
                parsed,
                [
                    (x, messages.variant_json(p))
                    for x, p in zip(result.variants, variants, strict=True)
                ],
                DRAFT,
            )
            for proto, record in zip(variants, stored, strict=True):
                proto.creative_id = record.creative_id
        return G.GenerateResponse(
            variants=variants,
            llm_unavailable=result.llm_unavailable,
            rejected_attempt_count=result.rejected_attempts,
        )

    async def GenerateStream(
        self, request: G.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[G.GenerateStreamResponse]:
        v = Violations()
        parsed = messages.generation_request(request.request, v, prefix="request.")
        v.raise_if_any()
        assert parsed is not None
        final: list[GenerationResult] = []
        async for delta in self.domain.stream(
            parsed, final.append, timeout_s=remaining_s(context, self.domain.settings.llm_timeout_s)
        ):
            yield G.GenerateStreamResponse(text_delta=delta)
        result = final[0]
        yield G.GenerateStreamResponse(
            final_variant=messages.variant_to_proto(result.variants[0], result, result.latency_ms)
        )

    async def GetCreatives(
        self, request: G.GetCreativesRequest, context: grpc.aio.ServicerContext
    ) -> G.GetCreativesResponse:
        v = Violations()
        v.check(
            1 <= len(request.queries) <= MAX_QUERIES,
            "queries",
            f"1 to {MAX_QUERIES} queries required",
        )
        for n, q in enumerate(request.queries):
            v.check(bool(q.item_id), f"queries[{n}].item_id", "required")
        channel = messages.CHANNELS.get(request.channel, "")
        v.check(bool(channel), "channel", "required")
        v.check(request.locale in messages.LOCALES, "locale", "required: en-US or zh-CN")
        v.check(0 <= request.max_per_item <= 20, "max_per_item", "must be between 0 and 20")
        v.raise_if_any()
        status = messages.STATUSES.get(request.status, LIVE)
        found = await self.domain.creatives_for(
            [(q.item_id, q.item_version) for q in request.queries],
            channel,
            request.locale,
            request.segment,
            status,
            request.max_per_item or 5,
        )
        return G.GetCreativesResponse(
            items=[
                G.ItemCreatives(
                    item_id=q.item_id,
                    creatives=[messages.creative_to_proto(c) for c in found.get(q.item_id, [])],
                )
                for q in request.queries
            ]
        )

    async def ListCreatives(
        self, request: G.ListCreativesRequest, context: grpc.aio.ServicerContext
    ) -> G.ListCreativesResponse:
        query = {"item_id": request.item_id, "status": request.status}
        page = pagination.parse_page(request.page_size, request.page_token, query)
        found = await self.domain.list_creatives(
            request.item_id, messages.STATUSES.get(request.status, ""), page.after, page.size + 1
        )
        more = len(found) > page.size
        found = found[: page.size]
        return G.ListCreativesResponse(
            creatives=[messages.creative_to_proto(c) for c in found],
            next_page_token=pagination.next_token(found[-1].creative_id, query) if more else "",
        )

    async def ApproveCreative(
        self, request: G.ApproveCreativeRequest, context: grpc.aio.ServicerContext
    ) -> G.ApproveCreativeResponse:
        _require_id(request.creative_id)
        record = await self.domain.set_status(
            request.creative_id, LIVE if request.make_live else APPROVED, request.reviewer, ""
        )
        return G.ApproveCreativeResponse(creative=messages.creative_to_proto(record))

    async def RetireCreative(
        self, request: G.RetireCreativeRequest, context: grpc.aio.ServicerContext
    ) -> G.RetireCreativeResponse:
        _require_id(request.creative_id)
        record = await self.domain.set_status(request.creative_id, RETIRED, "", request.reason)
        return G.RetireCreativeResponse(creative=messages.creative_to_proto(record))

    async def PregenerateCreatives(
        self, request: G.PregenerateCreativesRequest, context: grpc.aio.ServicerContext
    ) -> G.PregenerateCreativesResponse:
        v = Violations()
        validate_key(request.idempotency_key)
        v.check(
            1 <= len(request.items) <= MAX_PREGENERATION_UNITS,
            "items",
            "1 to 10,000 items required",
        )
        v.check(bool(request.channels), "channels", "at least one channel required")
        v.check(bool(request.locales), "locales", "at least one locale required")
        v.check(0 <= request.variants_per_item <= 8, "variants_per_item", "must be between 0 and 8")
        units = (
            len(request.items)
            * len(request.channels)
            * len(request.locales)
            * max(1, len(request.segments))
        )
        v.check(
            units <= MAX_PREGENERATION_UNITS,
            "items",
            f"items x channels x locales x segments must be <= {MAX_PREGENERATION_UNITS} (got {units})",
        )
        v.raise_if_any()
        parsed = []
        for n, item in enumerate(request.items):
            for channel in request.channels:
                for locale in request.locales:
                    for segment in list(request.segments) or [""]:
                        one = G.GenerateRequest(
                            item=item,
                            channel=channel,
                            locale=locale,
                            audience=G.Audience(segment=segment),
                            variant_count=request.variants_per_item or 2,
                        )
                        p = messages.generation_request(one, v, prefix=f"items[{n}].")
                        if p is not None:
                            parsed.append(p)
        v.raise_if_any()

        def to_json(variant, result):  # type: ignore[no-untyped-def]
            return messages.variant_json(
                messages.variant_to_proto(variant, result, result.latency_ms)
            )

        job = await self.domain.start_job(parsed, LIVE if request.auto_approve else DRAFT, to_json)
        return G.PregenerateCreativesResponse(job=messages.job_to_proto(job))

    async def GetPregenerationJob(
        self, request: G.GetPregenerationJobRequest, context: grpc.aio.ServicerContext
    ) -> G.GetPregenerationJobResponse:
        v = Violations()
        v.check(bool(request.job_id), "job_id", "required")
        v.raise_if_any()
        return G.GetPregenerationJobResponse(
            job=messages.job_to_proto(await self.domain.get_job(request.job_id))
        )

    async def ListPromptTemplates(
        self, request: G.ListPromptTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> G.ListPromptTemplatesResponse:
        page = pagination.parse_page(request.page_size, request.page_token, "templates")
        templates = sorted(list_templates(), key=lambda t: (t.version, t.locale))
        keyed = [(f"{t.version}/{t.locale}", t) for t in templates]
        rest = [(k, t) for k, t in keyed if k > page.after]
        chosen = rest[: page.size]
        return G.ListPromptTemplatesResponse(
            templates=[
                G.PromptTemplate(template_id=t.template_id, version=t.version, locale=t.locale)
                for _, t in chosen
            ],
            next_page_token=pagination.next_token(chosen[-1][0], "templates")
            if len(rest) > page.size
            else "",
        )


def _require_id(creative_id: str) -> None:
    v = Violations()
    v.check(bool(creative_id), "creative_id", "required")
    v.raise_if_any()
