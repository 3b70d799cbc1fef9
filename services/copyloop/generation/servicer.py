"""GenerationService gRPC servicer: validates, converts, calls the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from sqlalchemy.exc import IntegrityError

from copyloop.common import pagination, validation
from copyloop.common.deadlines import remaining_s
from copyloop.common.downstream import forwarded_metadata
from copyloop.generation import messages
from copyloop.generation.domain import GenerationDomain, GenerationResult
from copyloop.generation.effects import CopyEffectClient
from copyloop.generation.prompts import list_templates
from copyloop.generation.store import APPROVED, DRAFT, LIVE, RETIRED, CreativeRecord
from copyloop.v1 import generation_pb2, generation_pb2_grpc

G = generation_pb2
FULL_NAME = G.DESCRIPTOR.services_by_name["GenerationService"].full_name
EFFECT_TIMEOUT_S = 2.0  # ReviewCopy answers without the prediction when it is slower


@validation.checked_by(messages.validate_request)
class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, domain: GenerationDomain, effects: CopyEffectClient) -> None:
        self.domain = domain
        self.effects = effects

    async def Generate(
        self, request: G.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> G.GenerateResponse:
        parsed = messages.generate_request(request)
        key = messages.idempotency("Generate", request)
        stored = await self.domain.replay(key)
        if stored is not None:
            return G.GenerateResponse.FromString(stored)
        result = await self.domain.generate(
            parsed, timeout_s=remaining_s(context, self.domain.settings.llm_timeout_s)
        )
        variants = [
            messages.variant_to_proto(x, result, result.latency_ms / max(1, len(result.variants)))
            for x in result.variants
        ]
        reply = G.GenerateResponse(
            variants=variants,
            llm_unavailable=result.llm_unavailable,
            rejected_attempt_count=result.rejected_attempts,
            degradations=result.degradations,
        )

        def with_ids(records: list[CreativeRecord]) -> bytes:
            for proto, record in zip(reply.variants, records, strict=True):
                proto.creative_id = record.creative_id
            return reply.SerializeToString()

        if request.store_in_pool:
            try:
                records = await self.domain.store_variants(
                    parsed,
                    [
                        (x, messages.variant_json(p))
                        for x, p in zip(result.variants, variants, strict=True)
                    ],
                    DRAFT,
                    key,
                    with_ids,
                )
            except IntegrityError:  # a concurrent retry with the same key stored first
                stored = await self.domain.replay(key)
                if stored is None:
                    raise
                return G.GenerateResponse.FromString(stored)
            with_ids(records)
            return reply
        return G.GenerateResponse.FromString(
            await self.domain.remember(key, reply.SerializeToString())
        )

    async def GenerateStream(
        self, request: G.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[G.GenerateStreamResponse]:
        parsed = messages.generate_request(request.request, prefix="request.")
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
        query = messages.creatives_query(request)
        found = await self.domain.creatives_for(
            query.items,
            query.channel,
            query.locale,
            query.segment,
            query.status,
            query.per_item,
            query.model_version,
            query.template_version,
        )
        return G.GetCreativesResponse(
            items=[
                G.ItemCreatives(
                    item_id=q.item_id,
                    creatives=[
                        messages.creative_to_proto(c, query.fields)
                        for c in found.get(q.item_id, [])
                    ],
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
        messages.require("creative_id", request.creative_id)
        record = await self.domain.set_status(
            request.creative_id, LIVE if request.make_live else APPROVED, request.reviewer, ""
        )
        return G.ApproveCreativeResponse(creative=messages.creative_to_proto(record))

    async def RetireCreative(
        self, request: G.RetireCreativeRequest, context: grpc.aio.ServicerContext
    ) -> G.RetireCreativeResponse:
        messages.require("creative_id", request.creative_id)
        record = await self.domain.set_status(request.creative_id, RETIRED, "", request.reason)
        return G.RetireCreativeResponse(creative=messages.creative_to_proto(record))

    async def PregenerateCreatives(
        self, request: G.PregenerateCreativesRequest, context: grpc.aio.ServicerContext
    ) -> G.PregenerateCreativesResponse:
        parsed = messages.pregeneration_requests(request)
        # A version Triton does not serve fails now, not unit by unit in the background.
        await self.domain.check_model_version(request.model_version)
        job = await self.domain.start_job(
            parsed,
            LIVE if request.auto_approve else DRAFT,
            messages.variant_record,
            messages.idempotency("PregenerateCreatives", request),
        )
        return G.PregenerateCreativesResponse(job=messages.job_to_proto(job))

    async def GetPregenerationJob(
        self, request: G.GetPregenerationJobRequest, context: grpc.aio.ServicerContext
    ) -> G.GetPregenerationJobResponse:
        messages.require("job_id", request.job_id)
        return G.GetPregenerationJobResponse(
            job=messages.job_to_proto(await self.domain.get_job(request.job_id))
        )

    async def ReviewCopy(
        self, request: G.ReviewCopyRequest, context: grpc.aio.ServicerContext
    ) -> G.ReviewCopyResponse:
        call = messages.review_request(request)
        result = self.domain.review(call.text, call.brief, call.constraints, call.promotion)
        effect, missing = await self.effects.predict(
            request.item,
            request.text,
            request.channel,
            request.locale,
            forwarded_metadata(context.invocation_metadata()),
            remaining_s(context, EFFECT_TIMEOUT_S),
        )
        return messages.review_to_proto(result, effect, [missing] if missing else [])

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
