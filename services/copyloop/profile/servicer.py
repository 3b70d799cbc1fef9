"""ProfileService gRPC servicer: validates requests, converts messages, calls the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from copyloop.common import pagination, validation
from copyloop.common.errors import Violations
from copyloop.common.idempotency import validate_key
from copyloop.profile import messages
from copyloop.profile.catalog import MAX_BATCH, item_violations
from copyloop.profile.domain import ProfileDomain
from copyloop.profile.profiles import EventIn
from copyloop.profile.store import CREATED, UNCHANGED, UPDATED, IngestResult, Rejection
from copyloop.v1 import profile_pb2, profile_pb2_grpc

OUTCOMES = {
    CREATED: profile_pb2.ITEM_WRITE_OUTCOME_CREATED,
    UPDATED: profile_pb2.ITEM_WRITE_OUTCOME_UPDATED,
    UNCHANGED: profile_pb2.ITEM_WRITE_OUTCOME_UNCHANGED,
}
FULL_NAME = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name


@validation.checked_by(messages.validate_request)
class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, domain: ProfileDomain) -> None:
        self.domain = domain

    async def UpsertItems(
        self, request: profile_pb2.UpsertItemsRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.UpsertItemsResponse:
        v = Violations()
        v.check(1 <= len(request.items) <= MAX_BATCH, "items", f"1 to {MAX_BATCH} items required")
        validate_key(request.idempotency_key)
        items = [messages.item_from_proto(i) for i in request.items]
        seen: set[str] = set()
        for n, item in enumerate(items):
            for field, why in item_violations(item, f"items[{n}]"):
                v.add(field, why)
            if item.item_id in seen:
                v.add(f"items[{n}].item_id", "duplicated in this request")
            seen.add(item.item_id)
        v.raise_if_any()
        results = await self.domain.upsert_items(items, request.idempotency_key)
        return profile_pb2.UpsertItemsResponse(
            results=[
                profile_pb2.ItemWriteResult(
                    item_id=r.item_id, version=r.version, outcome=OUTCOMES[r.outcome]
                )
                for r in results
            ]
        )

    async def GetItems(
        self, request: profile_pb2.GetItemsRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.GetItemsResponse:
        v = Violations()
        v.check(
            1 <= len(request.item_ids) <= MAX_BATCH, "item_ids", f"1 to {MAX_BATCH} ids required"
        )
        v.raise_if_any()
        found = await self.domain.get_items(list(request.item_ids))
        return profile_pb2.GetItemsResponse(
            items=[messages.item_to_proto(found[i]) for i in request.item_ids if i in found],
            missing_item_ids=[i for i in request.item_ids if i not in found],
        )

    async def ListItems(
        self, request: profile_pb2.ListItemsRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.ListItemsResponse:
        v = Violations()
        query = messages.query_from_filter(request.filter, v)
        v.raise_if_any()
        page = pagination.parse_page(request.page_size, request.page_token, query)
        items = await self.domain.list_items(query, page.after, page.size + 1)
        more = len(items) > page.size
        items = items[: page.size]
        return profile_pb2.ListItemsResponse(
            items=[messages.item_to_proto(i) for i in items],
            next_page_token=pagination.next_token(items[-1].data.item_id, query) if more else "",
        )

    async def IngestEvents(
        self, request: profile_pb2.IngestEventsRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.IngestEventsResponse:
        v = Violations()
        v.check(
            1 <= len(request.events) <= messages.MAX_EVENTS,
            "events",
            f"1 to {messages.MAX_EVENTS} events required",
        )
        v.raise_if_any()
        valid, rejected = messages.split_events(list(request.events))
        result = _with_rejections(rejected)
        if valid:
            result.add(await self.domain.ingest(valid))
        return profile_pb2.IngestEventsResponse(summary=_summary(result))

    async def IngestEventStream(
        self,
        request_iterator: AsyncIterator[profile_pb2.IngestEventStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> profile_pb2.IngestEventStreamResponse:
        rejected = IngestResult()

        async def chunks() -> AsyncIterator[list[tuple[int, EventIn]]]:
            offset = 0
            async for chunk in request_iterator:
                if len(chunk.events) > messages.MAX_EVENTS:
                    v = Violations()
                    v.add("events", f"at most {messages.MAX_EVENTS} events per message")
                    v.raise_if_any()
                valid, bad = messages.split_events(list(chunk.events), offset)
                offset += len(chunk.events)
                for r in bad:
                    rejected.reject(r)
                yield valid

        result = await self.domain.ingest_stream(chunks(), IngestResult())
        result.add(rejected)
        return profile_pb2.IngestEventStreamResponse(summary=_summary(result))

    async def GetUserProfile(
        self, request: profile_pb2.GetUserProfileRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.GetUserProfileResponse:
        _require_user(request.user_id)
        profile = await self.domain.get_profile(request.user_id)
        return profile_pb2.GetUserProfileResponse(profile=messages.profile_to_proto(profile))

    async def RecallItems(
        self, request: profile_pb2.RecallItemsRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.RecallItemsResponse:
        v = Violations()
        v.check(
            bool(request.user_id) and len(request.user_id) <= 128,
            "user_id",
            "required, at most 128 characters",
        )
        v.check(0 <= request.k <= 1000, "k", "must be between 0 and 1000")
        query = messages.query_from_filter(request.filter, v)
        v.raise_if_any()
        if not request.include_out_of_stock:
            query = type(query)(**{**query.__dict__, "in_stock_only": True})
        recalled, cold = await self.domain.recall(request.user_id, request.k or 50, query)
        return profile_pb2.RecallItemsResponse(
            cold_start=cold,
            items=[
                profile_pb2.RecalledItem(
                    item=messages.item_to_proto(r.item),
                    score=r.scored.score,
                    affinity_score=r.scored.affinity,
                    popularity_score=r.scored.popularity,
                    recency_score=r.scored.recency,
                    reasons=list(r.scored.reasons),
                )
                for r in recalled
            ],
        )

    async def DeleteUser(
        self, request: profile_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.DeleteUserResponse:
        _require_user(request.user_id)
        validate_key(request.idempotency_key)
        deleted, had_profile = await self.domain.delete_user(request.user_id)
        return profile_pb2.DeleteUserResponse(
            deleted_event_count=deleted, profile_deleted=had_profile
        )


def _require_user(user_id: str) -> None:
    v = Violations()
    v.check(bool(user_id) and len(user_id) <= 128, "user_id", "required, at most 128 characters")
    v.raise_if_any()


def _with_rejections(rejections: list[Rejection]) -> IngestResult:
    result = IngestResult()
    for r in rejections:
        result.reject(r)
    return result


def _summary(result: IngestResult) -> profile_pb2.IngestSummary:
    return profile_pb2.IngestSummary(
        accepted=result.accepted,
        duplicate=result.duplicate,
        rejected=result.rejected,
        rejections=[
            profile_pb2.RejectedEvent(
                index=r.index, event_id=r.event_id, reason=r.reason, field=r.field
            )
            for r in sorted(result.rejections or [], key=lambda r: r.index)
        ],
    )
