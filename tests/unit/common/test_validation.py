"""copyloop.common.validation: one check per kind of value, the generic walk over a request,
page-token keys, JSON-bound values, and the servicer decorator that runs the checks first."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from copyloop.common import pagination, validation
from copyloop.common.errors import InvalidArgument, Violations
from copyloop.profile import messages as profile_messages
from copyloop.profile.profiles import ItemFacts, ProfileState, apply_event
from copyloop.v1 import common_pb2, fusion_pb2, prediction_pb2, profile_pb2

LIMITS = validation.limits({"copyloop.v1.GetUserProfileRequest.user_id": 128})


def scanned(msg: Any, lim: validation.Limits = LIMITS) -> dict[str, str]:
    v = Violations()
    validation.scan(msg, v, lim)
    return {x.field: x.description for x in v.items}


def test_text_checks_length_and_nul() -> None:
    assert validation.text_problem("ok", 5) is None
    assert validation.text_problem("toolong", 5) == "at most 5 characters"
    assert validation.text_problem("a\x00b", 5) == "must not contain NUL characters"
    assert validation.text_problem("  ", 5, required=True) == "required"


def test_numbers_must_be_finite_and_in_range() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        assert validation.number_problem(bad) == "must be a finite number"
    assert validation.number_problem(1e308, 0, validation.MAX_PRICE) is not None
    assert validation.number_problem(-1.0) is not None
    assert validation.number_problem(19.99, 0, validation.MAX_PRICE) is None


def test_timestamps_between_1970_and_9999() -> None:
    assert validation.time_problem(0) is None
    assert validation.time_problem(validation.MAX_TIME_S) is None
    assert validation.time_problem(-1) is not None
    assert validation.time_problem(validation.MAX_TIME_S + 1) is not None
    assert validation.time_problem(10, nanos=-1) is not None
    assert validation.time_problem(10, nanos=1_000_000_000) is not None


def test_scan_finds_every_kind_of_bad_value_at_its_path() -> None:
    event = profile_pb2.Event(
        event_id="e\x00",
        user_id="u" * 129,
        price=math.nan,
        context=common_pb2.Context(channel=99, locale="x" * 17),
    )
    event.event_time.seconds = 253_402_300_800  # year 10000
    event.context.request_time.seconds = -5
    found = scanned(profile_pb2.IngestEventsRequest(events=[event]), profile_messages.LIMITS)
    assert found == {
        "events[0].event_id": "must not contain NUL characters",
        "events[0].user_id": "at most 128 characters",
        "events[0].event_time": "must be between 1970-01-01 and 9999-12-31",
        "events[0].price": "must be a finite number",
        "events[0].context.channel": "unknown Channel value 99",
        "events[0].context.locale": "at most 16 characters",
        "events[0].context.request_time": "must be between 1970-01-01 and 9999-12-31",
    }


def test_scan_checks_map_keys_and_values_and_repeated_scalars() -> None:
    item = common_pb2.Item(
        item_id="i1", attributes={"k\x00": "v", "color": "r" * 1001}, tags=["ok", "t\x00"]
    )
    found = scanned(profile_pb2.UpsertItemsRequest(items=[item]))
    assert found == {
        "items[0].attributes[k\\0].key": "must not contain NUL characters",
        "items[0].attributes[color]": "at most 1000 characters",
        "items[0].tags[1]": "must not contain NUL characters",
    }


def test_scan_accepts_a_plausible_request_and_unspecified_enums() -> None:
    ok = fusion_pb2.RecommendRequest(
        user_id="u1", context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US")
    )
    assert scanned(ok) == {}
    assert scanned(fusion_pb2.RecommendRequest()) == {}


def test_scan_stops_after_enough_violations() -> None:
    many = profile_pb2.GetItemsRequest(item_ids=["\x00"] * 5000)
    assert len(scanned(many)) == validation.MAX_SCAN_VIOLATIONS


def test_default_limit_applies_to_fields_without_their_own() -> None:
    assert scanned(profile_pb2.GetUserProfileRequest(user_id="u" * 129)) == {
        "user_id": "at most 128 characters"
    }
    huge = fusion_pb2.GetExperimentReportRequest(baseline_arm_id="b" * 10_001)
    assert scanned(huge) == {"baseline_arm_id": f"at most {validation.DEFAULT_MAX_TEXT} characters"}


def test_first_problem_names_one_field() -> None:
    assert validation.first_problem(profile_pb2.Event(event_id="ok"), LIMITS) is None
    assert validation.first_problem(profile_pb2.Event(price=math.inf), LIMITS) == (
        "price",
        "must be a finite number",
    )


def test_json_problem_refuses_what_postgresql_refuses() -> None:
    assert validation.json_problem({"a": [1, 2.5, "x", None, True]}) is None
    assert validation.json_problem({"a": [math.nan]}) == "must be a finite number"
    assert validation.json_problem({"k\x00": 1}) == "must not contain NUL characters"
    assert validation.json_problem({"a": object()}) is not None
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    assert validation.json_problem(deep) == "nested too deeply"


def test_finite_or_bounds_sums() -> None:
    assert validation.finite_or(math.nan) == 0.0
    assert validation.finite_or(math.inf) == validation.MAX_MAGNITUDE
    assert validation.finite_or(-math.inf) == -validation.MAX_MAGNITUDE
    assert validation.finite_or(3.5) == 3.5


def _token(after: object, query: object) -> str:
    payload = {"after": after, "q": pagination.query_hash(query)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize("after", ["\x00", "x" * 300, {"a": 1}, None, 1e308, ["x"]])
def test_forged_page_token_keys_are_invalid_argument(after: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        pagination.parse_page(10, _token(after, "experiments"), "experiments")
    assert err.value.violations[0].field == "page_token"


def test_page_token_key_pattern_guards_numeric_keys() -> None:
    digits = validation.re.compile(r"[0-9]{1,18}")
    assert pagination.parse_page(5, _token("42", "v"), "v", digits).after == "42"
    for forged in ("9" * 40, "²³", "-5", "4 2"):
        with pytest.raises(InvalidArgument):
            pagination.parse_page(5, _token(forged, "v"), "v", digits)


def test_profile_totals_stay_finite_whatever_the_prices() -> None:
    from copyloop.profile.profiles import MAX_TOTAL, EventIn

    state = ProfileState()
    facts = ItemFacts("i1", "Shoes", "Acme", 1e308, False)
    for n in range(3):
        purchase = EventIn(f"e{n}", "u1", "purchase", "i1", 1000.0 + n, 2**31 - 1, 0.0)
        apply_event(state, purchase, facts, 86_400.0)
    assert state.monetary_total == MAX_TOTAL
    assert math.isfinite(state.price_weighted_sum) and state.price_weighted_sum <= MAX_TOTAL
    # A state stored before totals were bounded heals when read.
    stored = {**state.to_json(), "monetary_total": math.inf, "price_weight": math.nan}
    healed = ProfileState.from_json(stored)
    assert healed.monetary_total == MAX_TOTAL and healed.price_weight == 0.0


class _Servicer:
    def __init__(self) -> None:
        self.ran: list[str] = []

    async def Unary(self, request: Any, context: Any) -> str:
        self.ran.append("unary")
        return "reply"

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[str]:
        self.ran.append("stream")
        yield "a"
        yield "b"

    async def ClientStream(self, request: Any, context: Any) -> str:
        self.ran.append("client-stream")
        return "reply"


def _reject_nul(request: Any) -> None:
    v = Violations()
    validation.scan(request, v, LIMITS)
    v.raise_if_any()


def test_checked_by_runs_the_check_before_every_rpc() -> None:
    servicer = validation.checked_by(_reject_nul)(_Servicer)()
    good = profile_pb2.GetUserProfileRequest(user_id="u1")
    bad = profile_pb2.GetUserProfileRequest(user_id="u\x00")
    big_bad = prediction_pb2.LogOutcomesRequest(
        outcomes=[prediction_pb2.Outcome(outcome_id="o" * 100)] * 1000
        + [prediction_pb2.Outcome(value=math.nan)]
    )

    async def run() -> None:
        assert await servicer.Unary(good, None) == "reply"
        assert [x async for x in servicer.ServerStream(good, None)] == ["a", "b"]
        with pytest.raises(InvalidArgument):
            await servicer.Unary(bad, None)
        with pytest.raises(InvalidArgument):
            [x async for x in servicer.ServerStream(bad, None)]
        with pytest.raises(InvalidArgument):  # checked on a worker thread: same answer
            await servicer.Unary(big_bad, None)

        async def chunks() -> AsyncIterator[Any]:
            yield bad

        # A client stream's chunks are the method's to check, one by one.
        assert await servicer.ClientStream(chunks(), None) == "reply"

    asyncio.run(run())
    assert servicer.ran == ["unary", "stream", "client-stream"]


def test_every_rpc_of_every_service_runs_the_edge_checks() -> None:
    from copyloop.fusion.servicer import FusionServicer
    from copyloop.generation.servicer import GenerationServicer
    from copyloop.prediction.servicer import PredictionServicer
    from copyloop.profile.servicer import ProfileServicer
    from copyloop.v1 import generation_pb2

    servicers = {
        "ProfileService": (ProfileServicer, profile_pb2),
        "PredictionService": (PredictionServicer, prediction_pb2),
        "FusionService": (FusionServicer, fusion_pb2),
        "GenerationService": (GenerationServicer, generation_pb2),
    }
    unchecked = [
        f"{name}.{m.name}"
        for name, (cls, module) in servicers.items()
        for m in module.DESCRIPTOR.services_by_name[name].methods
        if not hasattr(vars(cls).get(m.name), "__wrapped__")
    ]
    assert unchecked == []
