"""GenerationService's edge: requests become validated domain requests (angles chosen for the
segment, urgency only with a real deadline, promotions parsed), bad input is named field by
field."""

from __future__ import annotations

import grpc
import pytest

from copyloop.common.errors import ServiceError, Violations
from copyloop.generation import messages
from copyloop.generation.prompts.brief import angles_for_segment
from copyloop.v1 import common_pb2, generation_pb2

G = generation_pb2
ITEM = common_pb2.Item(item_id="lamp-1", title="Cosy Reading Lamp", price=24.99, list_price=29.99)


def generate(**over: object) -> G.GenerateRequest:
    fields: dict[str, object] = dict(item=ITEM, channel=common_pb2.CHANNEL_PUSH, locale="en-US")
    fields.update(over)
    return G.GenerateRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("segment", "variants", "plan"),
    [
        ("bargain_hunter", 3, [("value", 2), ("benefit", 1)]),
        ("loyal_high_value", 2, [("quality", 1), ("benefit", 1)]),
        ("", 1, [(angles_for_segment("")[0], 1)]),
        # Copy for everyone spans as many angles as it has variants: every segment picks.
        ("", 4, [(a, 1) for a in angles_for_segment("")[:4]]),
        ("gift_shopper", 4, [("gift", 2), ("quality", 2)]),
    ],
)
def test_angle_plan_spreads_variants_over_the_segments_best_angles(
    segment: str, variants: int, plan: list[tuple[str, int]]
) -> None:
    assert messages.angle_plan(segment, variants) == plan
    assert sum(n for _, n in plan) == variants


def test_the_angle_defaults_to_the_segments_first_and_is_kept_when_given() -> None:
    chosen = messages.generate_request(generate(audience=G.Audience(segment="bargain_hunter")))
    assert chosen.brief.angle == "value"
    given = messages.generate_request(generate(angle="gift"))
    assert given.brief.angle == "gift"


def test_urgency_needs_a_promotion_with_an_end_time() -> None:
    with pytest.raises(ServiceError) as caught:
        messages.generate_request(generate(angle="urgency"))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    promo = G.Promotion(discount_percent=20)
    promo.end_time.seconds = 4_102_444_800
    ok = messages.generate_request(generate(angle="urgency", promotion=promo))
    assert ok.brief.angle == "urgency" and ok.promotion is not None
    assert ok.promotion.discount_pct == 20 and ok.promotion.end_time == 4_102_444_800


def test_unknown_angle_is_a_field_violation() -> None:
    v = Violations()
    assert messages.generation_request(generate(angle="flattery"), v) is None
    assert v


def test_pregeneration_writes_per_segment_and_angle() -> None:
    request = G.PregenerateCreativesRequest(
        items=[ITEM],
        channels=[common_pb2.CHANNEL_PUSH],
        locales=["en-US", "zh-CN"],
        segments=["bargain_hunter", "loyal_high_value"],
        variants_per_item=3,
    )
    parsed = messages.pregeneration_requests(request)
    keys = {(p.brief.locale, p.brief.audience_segment, p.brief.angle) for p in parsed}
    assert ("en-US", "bargain_hunter", "value") in keys
    assert ("zh-CN", "loyal_high_value", "quality") in keys
    per_slot = {}
    for p in parsed:
        key = (p.brief.locale, p.brief.audience_segment)
        per_slot[key] = per_slot.get(key, 0) + p.variant_count
    assert set(per_slot.values()) == {3}
