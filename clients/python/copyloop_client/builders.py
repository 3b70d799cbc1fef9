"""Request builders shared by the sync and async clients, so both send exactly the same
messages and only the transport differs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, prediction_pb2, profile_pb2
from copyloop_client.convert import (
    InputError,
    event_from_dict,
    item_from_dict,
    parse_arm_strategy,
    parse_channel,
    parse_feedback_type,
    parse_objective,
    parse_tone,
    to_timestamp,
)

__all__ = [
    "ArmLike",
    "EventLike",
    "ItemLike",
    "batched",
    "create_experiment_request",
    "generate_request",
    "new_idempotency_key",
    "outcome_event",
    "parse_arm",
    "recommend_request",
    "score_request",
    "to_event",
    "to_item",
    "train_model_request",
]

ItemLike = common_pb2.Item | Mapping[str, Any]
EventLike = profile_pb2.Event | Mapping[str, Any]
ArmLike = fusion_pb2.Arm | str | tuple[str, str | int, float]
T = TypeVar("T")

MAX_UPSERT_BATCH = 1000  # UpsertItemsRequest limit
MAX_EVENT_BATCH = 10_000  # IngestEvents / stream chunk limit


def new_idempotency_key() -> str:
    """One key per logical call: gRPC's retries resend the same bytes, so a retried write that
    did reach the server is answered from its idempotency record, never applied twice."""
    return uuid.uuid4().hex


def to_item(item: ItemLike) -> common_pb2.Item:
    return item if isinstance(item, common_pb2.Item) else item_from_dict(item)


def to_event(event: EventLike) -> profile_pb2.Event:
    return event if isinstance(event, profile_pb2.Event) else event_from_dict(event)


def batched(values: Iterable[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise InputError(f"batch size must be >= 1, got {size}")
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def context(channel: str | int, locale: str, placement: str = "") -> common_pb2.Context:
    return common_pb2.Context(channel=parse_channel(channel), locale=locale, placement=placement)


def recommend_request(
    user_id: str,
    channel: str | int,
    locale: str,
    n: int,
    *,
    candidate_item_ids: Sequence[str] = (),
    experiment_id: str = "",
    objective: str | int | None = None,
    latency_budget_ms: int = 0,
    placement: str = "",
) -> fusion_pb2.RecommendRequest:
    return fusion_pb2.RecommendRequest(
        user_id=user_id,
        context=context(channel, locale, placement),
        n=n,
        candidate_item_ids=list(candidate_item_ids),
        experiment_id=experiment_id,
        objective=parse_objective(objective)
        if objective is not None
        else fusion_pb2.RANKING_OBJECTIVE_UNSPECIFIED,
        latency_budget_ms=latency_budget_ms,
    )


def outcome_event(
    request_id: str,
    impression_id: str,
    type: str | int,
    value: float = 0.0,
    event_id: str | None = None,
    event_time: Any = None,
) -> fusion_pb2.OutcomeEvent:
    """`type`: impression, click, add_to_cart or purchase. Without an event_id one is derived
    from (impression, type), so reporting the same outcome twice counts once."""
    kind = parse_feedback_type(type)
    kind_name = fusion_pb2.FeedbackType.Name(kind).removeprefix("FEEDBACK_TYPE_").lower()
    event = fusion_pb2.OutcomeEvent(
        event_id=event_id or f"{impression_id}:{kind_name}",
        request_id=request_id,
        impression_id=impression_id,
        type=kind,
        value=value,
    )
    if event_time is not None:
        event.event_time.CopyFrom(to_timestamp(event_time, "event_time"))
    return event


def generate_request(
    item: common_pb2.Item,
    channel: str | int,
    locale: str,
    n: int = 3,
    *,
    tone: str | int | None = None,
    segment: str = "",
    seed: int | None = None,
    store_in_pool: bool = False,
    max_chars: int = 0,
) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest(
        item=item,
        channel=parse_channel(channel),
        locale=locale,
        variant_count=n,
        tone=parse_tone(tone) if tone is not None else generation_pb2.TONE_UNSPECIFIED,
        audience=generation_pb2.Audience(segment=segment),
        store_in_pool=store_in_pool,
        constraints=generation_pb2.CopyConstraints(max_chars=max_chars),
        idempotency_key=new_idempotency_key()
        if store_in_pool
        else "",  # only a pool write needs one
    )
    if seed is not None:
        request.sampling.seed = seed
    return request


def review_request(
    item: common_pb2.Item,
    text: str,
    channel: str | int,
    locale: str,
    *,
    segment: str = "",
    discount_percent: float = 0.0,
    free_shipping: bool = False,
    buy_one_get_one: bool = False,
    free_gift: bool = False,
    promotion_ends: datetime | None = None,
    banned_terms: Sequence[str] = (),
    must_include: Sequence[str] = (),
    disclaimer: str = "",
    max_chars: int = 0,
) -> generation_pb2.ReviewCopyRequest:
    """A ReviewCopy request; the promotion is sent only when one of its fields is set."""
    request = generation_pb2.ReviewCopyRequest(
        item=item,
        text=text,
        channel=parse_channel(channel),
        locale=locale,
        segment=segment,
        constraints=generation_pb2.CopyConstraints(
            banned_terms=list(banned_terms),
            must_include=list(must_include),
            required_disclaimer=disclaimer,
            max_chars=max_chars,
        ),
    )
    promo = request.promotion
    promo.discount_percent = discount_percent
    promo.free_shipping, promo.buy_one_get_one, promo.free_gift = (
        free_shipping,
        buy_one_get_one,
        free_gift,
    )
    if promotion_ends is not None:
        promo.end_time.FromDatetime(promotion_ends)
    if promo.ByteSize() == 0:
        request.ClearField("promotion")
    return request


def score_request(
    user_id: str,
    items: Sequence[common_pb2.Item],
    channel: str | int,
    locale: str,
    *,
    profile: common_pb2.UserProfile | None = None,
    copy_texts: Sequence[str] | None = None,
    creative_ids: Sequence[str] | None = None,
    model_version: str = "",
) -> prediction_pb2.ScoreRequest:
    if copy_texts is not None and len(copy_texts) != len(items):
        raise InputError(f"copy_texts: {len(copy_texts)} texts for {len(items)} items")
    if creative_ids is not None and len(creative_ids) != len(items):
        raise InputError(f"creative_ids: {len(creative_ids)} ids for {len(items)} items")
    return prediction_pb2.ScoreRequest(
        user_id=user_id,
        profile=profile,
        context=context(channel, locale),
        model_version=model_version,
        candidates=[
            prediction_pb2.ScoreCandidate(
                item=item,
                copy_text=copy_texts[n] if copy_texts else "",
                creative_id=creative_ids[n] if creative_ids else "",
            )
            for n, item in enumerate(items)
        ],
    )


def time_window(window: tuple[Any, Any], name: str) -> prediction_pb2.TimeWindow:
    start, end = window
    return prediction_pb2.TimeWindow(
        start_time=to_timestamp(start, f"{name}.start_time"),
        end_time=to_timestamp(end, f"{name}.end_time"),
    )


def train_model_request(
    train_window: tuple[Any, Any],
    eval_window: tuple[Any, Any],
    *,
    epochs: int = 0,
    seed: int = 0,
    promote_if_better: bool = False,
) -> prediction_pb2.TrainModelRequest:
    return prediction_pb2.TrainModelRequest(
        train_window=time_window(train_window, "train_window"),
        eval_window=time_window(eval_window, "eval_window"),
        epochs=epochs,
        seed=seed,
        promote_if_better=promote_if_better,
        idempotency_key=new_idempotency_key(),
    )


def parse_arm(arm: ArmLike) -> fusion_pb2.Arm:
    """ "arm_id:STRATEGY:weight" (e.g. "bandit:PERSONALISED_BANDIT:1"), a tuple, or an Arm."""
    if isinstance(arm, fusion_pb2.Arm):
        return arm
    parts: Sequence[Any] = arm.split(":") if isinstance(arm, str) else arm
    if len(parts) != 3:
        raise InputError(
            f"arm {arm!r}: expected arm_id:STRATEGY:weight, e.g. bandit:PERSONALISED_BANDIT:1"
        )
    arm_id, strategy, weight = parts
    try:
        traffic = float(weight)
    except ValueError:
        raise InputError(f"arm {arm!r}: weight {weight!r} is not a number") from None
    return fusion_pb2.Arm(
        arm_id=str(arm_id).strip(), strategy=parse_arm_strategy(strategy), traffic_weight=traffic
    )


def create_experiment_request(
    experiment_id: str, arms: Sequence[ArmLike], display_name: str = ""
) -> fusion_pb2.CreateExperimentRequest:
    return fusion_pb2.CreateExperimentRequest(
        experiment_id=experiment_id,
        display_name=display_name,
        arms=[parse_arm(a) for a in arms],
        idempotency_key=new_idempotency_key(),
    )
