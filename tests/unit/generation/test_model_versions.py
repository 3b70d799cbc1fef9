"""Copywriter versions at the edge: the version a request names is checked for form (a number;
whether Triton serves it is asked later), carried into every pre-generation unit and through a
job's stored requests, and GetCreatives' version filters reach the query."""

from __future__ import annotations

import pytest

from copyloop.common.errors import InvalidArgument, Violations
from copyloop.generation.domain import request_from_json, request_to_json
from copyloop.generation.messages import (
    check_model_version,
    creatives_query,
    generate_request,
    pregeneration_requests,
)
from copyloop.v1 import common_pb2, generation_pb2

G = generation_pb2
ITEM = common_pb2.Item(item_id="lamp-1", title="Aurora Desk Lamp", brand="Lumo", price=29.99)


@pytest.mark.parametrize("version", ["", "1", "2", "12", "123456789012345678"])
def test_version_numbers_and_empty_are_accepted(version: str) -> None:
    v = Violations()
    check_model_version(v, "model_version", version)
    assert not v


@pytest.mark.parametrize("version", ["0", "02", "two", "1.0", "-1", "v2", "1234567890123456789"])
def test_anything_else_is_a_field_violation(version: str) -> None:
    v = Violations()
    check_model_version(v, "model_version", version)
    assert v


def test_generate_carries_the_version_and_rejects_a_malformed_one() -> None:
    request = G.GenerateRequest(
        item=ITEM, channel=common_pb2.CHANNEL_PUSH, locale="en-US", model_version="3"
    )
    assert generate_request(request).model_version == "3"
    request.model_version = "three"
    with pytest.raises(InvalidArgument):
        generate_request(request)


def test_pregeneration_units_write_with_the_named_versions_also_after_a_resume() -> None:
    parsed = pregeneration_requests(
        G.PregenerateCreativesRequest(
            items=[ITEM],
            channels=[common_pb2.CHANNEL_PUSH],
            locales=["en-US"],
            segments=["bargain_hunter", ""],
            variants_per_item=2,
            model_version="2",
            template_version="v1",
        )
    )
    assert len(parsed) >= 2
    assert {(r.model_version, r.template_version) for r in parsed} == {("2", "v1")}
    # A job stores its requests as JSON and resumes from them: the version survives.
    assert request_from_json(request_to_json(parsed[0])).model_version == "2"


def test_get_creatives_passes_both_filters_and_checks_the_model_version() -> None:
    request = G.GetCreativesRequest(
        queries=[G.CreativeQuery(item_id="lamp-1")],
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        model_version="2",
        template_version="v1",
    )
    query = creatives_query(request)
    assert (query.model_version, query.template_version) == ("2", "v1")
    request.model_version = "latest"
    with pytest.raises(InvalidArgument):
        creatives_query(request)
