"""copyloop_client's Copyloop and AsyncCopyloop (the SDK) against real servers: the key reaches
them, errors carry the status details, and retries happen on UNAVAILABLE only, as the channel's
service config says."""

from __future__ import annotations

import time

import grpc
import pytest
from tests.integration.clients.helpers import (
    API_KEY,
    OTHER_API_KEY,
    ScriptedServer,
    ThreadedPlatform,
    catalog_rows,
    kitchen_events,
    scripted_config,
)

from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, profile_pb2
from copyloop_client import (
    AsyncCopyloop,
    ClientConfig,
    Copyloop,
    CopyloopError,
    DeadlineExceededError,
    FailedPreconditionError,
    InputError,
    InvalidArgumentError,
    NotFoundError,
    RetryPolicy,
    UnauthenticatedError,
    UnavailableError,
)


def test_calls_reach_the_services_with_the_key_and_stay_in_its_tenant(config: ClientConfig) -> None:
    with Copyloop(config) as client:
        summary = client.upsert_items(catalog_rows("sdk"), batch_size=5)  # three batches
        assert (summary.created, summary.updated, summary.unchanged, summary.total) == (
            12,
            0,
            0,
            12,
        )
        again = client.upsert_items(
            [*catalog_rows("sdk")[:2], {**catalog_rows("sdk")[2], "price": 99.5}]
        )
        assert (again.created, again.updated, again.unchanged) == (0, 1, 2)
        item = client.get_item("sdk-kitchen-1")
        assert (item.title, list(item.category_path), item.price) == (
            "Copper Pan 1",
            ["Kitchen", "Cookware"],
            99.5,
        )
        assert list(item.selling_points) == ["even heating", "oven safe"] and item.version == 2
    # Tenant B's key sees none of tenant A's catalog: the key really travelled with the calls.
    with Copyloop(config.with_overrides(api_key=OTHER_API_KEY)) as other:
        with pytest.raises(NotFoundError) as err:
            other.get_item("sdk-kitchen-1")
        assert (err.value.resource_type, err.value.resource_name) == ("item", "sdk-kitchen-1")


async def test_async_client_ingests_and_reads_profiles(config: ClientConfig) -> None:
    async with AsyncCopyloop(config) as client:
        await client.upsert_items(catalog_rows("aio"))
        events = kitchen_events("aio", "aio-user")
        events.append({**events[0], "event_id": "aio-bad", "item_id": "no-such-item"})
        summary = await client.ingest_events(events, batch_size=5)
        assert (summary.accepted, summary.duplicate, summary.rejected, summary.sent) == (
            12,
            0,
            1,
            13,
        )
        assert summary.rejections[0].index == 12 and summary.rejections[0].event_id == "aio-bad"
        replay = await client.stream_events(events[:4], chunk_size=3)
        assert (replay.accepted, replay.duplicate) == (0, 4)
        profile = await client.get_profile("aio-user")
        assert profile.event_count == 12 and profile.category_affinities[0].key == "Kitchen"
        # The typed stub attributes are the services' own methods, with key and deadline added.
        reply = await client.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id="aio-user")
        )
        assert reply.profile.purchase_count == 3


def test_invalid_request_names_every_bad_field(config: ClientConfig) -> None:
    with Copyloop(config) as client, pytest.raises(InvalidArgumentError) as err:
        client.recommend("", channel="push", locale="fr-FR", n=500)
    error = err.value
    assert not isinstance(error, grpc.RpcError)
    assert set(error.field_violations) == {"user_id", "context.locale", "n"}
    assert "en-US" in error.field_violations["context.locale"]
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.request_id
    assert str(error).startswith("INVALID_ARGUMENT: invalid request:") and "\n" not in str(error)


async def test_unknown_key_is_unauthenticated(config: ClientConfig) -> None:
    bad = config.with_overrides(api_key="not-a-key")
    with Copyloop(bad) as client, pytest.raises(UnauthenticatedError, match="unknown API key"):
        client.get_profile("anyone")
    async with AsyncCopyloop(bad) as client:
        with pytest.raises(UnauthenticatedError):
            await client.recommend("anyone")


def test_not_found_carries_the_resource(config: ClientConfig) -> None:
    with Copyloop(config) as client, pytest.raises(NotFoundError) as err:
        client.experiment_report("no-such-experiment")
    assert (err.value.resource_type, err.value.resource_name) == (
        "experiment",
        "no-such-experiment",
    )
    assert err.value.request_id


def test_failed_precondition_when_nothing_to_train_on(config: ClientConfig) -> None:
    with Copyloop(config) as client, pytest.raises(FailedPreconditionError) as err:
        client.train(days=7)
    assert err.value.violations and err.value.violations[0][1] == "outcomes"


def test_recommend_generate_score_and_feedback(config: ClientConfig) -> None:
    with Copyloop(config) as client:
        client.upsert_items(catalog_rows("flow"))
        client.ingest_events(kitchen_events("flow", "flow-user"))
        reply = client.recommend(
            "flow-user",
            "push",
            "en-US",
            n=4,
            candidate_item_ids=[r["item_id"] for r in catalog_rows("flow")],
        )
        assert len(reply.recommendations) == 4 and not reply.cold_start
        top = reply.recommendations[0]
        assert top.copy.text and 0 < top.p_ctr < 1
        first = client.report_outcome(reply.request_id, top.impression_id, "click")
        replay = client.report_outcome(reply.request_id, top.impression_id, "click")
        assert (first.accepted, replay.duplicate) == (1, 1)  # derived event ids dedupe

        generated = client.generate("flow-kitchen-2", "push", "en-US", n=2, tone="playful")
        assert len(generated.variants) == 2
        assert all(v.text and v.compliance.passed and len(v.text) <= 90 for v in generated.variants)
        scores = client.score(
            "flow-user", ["flow-kitchen-0", "flow-garden-0"], copy_texts=["Hot deal", "Water more"]
        )
        assert [s.item_id for s in scores.scores] == ["flow-kitchen-0", "flow-garden-0"]
        assert all(0 < s.p_ctr < 1 for s in scores.scores) and scores.model_version
        with pytest.raises(NotFoundError):
            client.score("flow-user", ["flow-nothing"])


async def test_review_checks_claims_against_the_item_and_promotion(config: ClientConfig) -> None:
    item = {"item_id": "rv-lamp", "title": "Cosy Reading Lamp", "brand": "Glowlab", "price": 24.99}
    with Copyloop(config) as client:
        good = client.review(item, "Cosy Reading Lamp by Glowlab, now $24.99.")
        assert good.passed, [f.message for f in good.findings]
        bad = client.review(item, "Cosy Reading Lamp, 50% off today only!")
        assert not bad.passed
        assert {f.claim_kind for f in bad.findings} >= {"discount", "time_limit"}
        with pytest.raises(InvalidArgumentError):
            client.review(item, "")
    async with AsyncCopyloop(config) as client:
        promo = await client.review(
            item, "Cosy Reading Lamp ships free.", "push", "en-US", free_shipping=True
        )
        assert promo.passed, [f.message for f in promo.findings]


def test_experiment_helpers(config: ClientConfig) -> None:
    with Copyloop(config) as client:
        experiment = client.create_experiment(
            "sdk-exp", ["generic:GENERIC_COPY:1", ("bandit", "personalised_bandit", 1)]
        )
        assert [a.strategy for a in experiment.arms] == [
            fusion_pb2.ARM_STRATEGY_GENERIC_COPY,
            fusion_pb2.ARM_STRATEGY_PERSONALISED_BANDIT,
        ]
        report = client.experiment_report("sdk-exp")
        assert {a.arm_id for a in report.arms} == {"generic", "bandit"}
        assert client.stop_experiment("sdk-exp").state == fusion_pb2.EXPERIMENT_STATE_STOPPED
        with pytest.raises(InputError, match="arm_id:STRATEGY:weight"):
            client.create_experiment("sdk-exp-2", ["generic"])


async def test_server_streams_are_wrapped_too(config: ClientConfig) -> None:
    good = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(
            item=common_pb2.Item(item_id="stream-1", title="Trail Mug", price=12, stock=3),
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            variant_count=1,
        )
    )
    bad = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(item=good.request.item, locale="xx")
    )
    with Copyloop(config) as client:
        finals = [
            r.final_variant.text
            for r in client.generation.GenerateStream(good)
            if r.final_variant.text
        ]
        assert finals and "Trail Mug" in finals[0]
        with pytest.raises(InvalidArgumentError) as err:
            list(client.generation.GenerateStream(bad))
        assert set(err.value.field_violations) == {"request.channel", "request.locale"}
    async with AsyncCopyloop(config) as aclient:
        finals = [
            r.final_variant.text
            async for r in aclient.generation.GenerateStream(good)
            if r.final_variant.text
        ]
        assert finals and "Trail Mug" in finals[0]
        with pytest.raises(InvalidArgumentError):
            [r async for r in aclient.generation.GenerateStream(bad)]


def test_bad_rows_fail_before_the_stream_with_the_field_named(config: ClientConfig) -> None:
    rows = kitchen_events("bad", "bad-user", 3)
    rows[2]["event_time"] = "yesterday-ish"
    with Copyloop(config) as client, pytest.raises(InputError, match="event_time: not ISO 8601"):
        client.stream_events(rows, chunk_size=1)


# ------------------------------------------------------------------------------ retries


def test_unavailable_is_retried_until_it_succeeds(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    with Copyloop(scripted_config(scripted_server)) as client:
        profile = client.get_profile("u1")
    assert (
        len(scripted_server.attempts) == 3 and profile.event_count == 3
    )  # the third attempt answered
    assert all(a["authorization"] == f"Bearer {API_KEY}" for a in scripted_server.attempts)


async def test_async_client_retries_the_same_way(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    async with AsyncCopyloop(scripted_config(scripted_server)) as client:
        profile = await client.get_profile("u1")
    assert len(scripted_server.attempts) == 3 and profile.event_count == 3


def test_retries_stop_at_max_attempts_and_keep_the_retry_hint(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script = [grpc.StatusCode.UNAVAILABLE] * 5
    policy = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.01)
    with (
        Copyloop(scripted_config(scripted_server, policy)) as client,
        pytest.raises(UnavailableError) as err,
    ):
        client.get_profile("u1")
    assert len(scripted_server.attempts) == 2
    assert err.value.retry_after_s == pytest.approx(1.5)


def test_one_attempt_means_no_retries(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [grpc.StatusCode.UNAVAILABLE]
    with (
        Copyloop(scripted_config(scripted_server, RetryPolicy(max_attempts=1))) as client,
        pytest.raises(UnavailableError),
    ):
        client.get_profile("u1")
    assert len(scripted_server.attempts) == 1


def test_invalid_argument_is_never_retried(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [grpc.StatusCode.INVALID_ARGUMENT]
    with (
        Copyloop(scripted_config(scripted_server)) as client,
        pytest.raises(InvalidArgumentError) as err,
    ):
        client.get_profile("u1")
    assert len(scripted_server.attempts) == 1
    assert err.value.field_violations == {"user_id": "required"}


def test_default_deadline_applies_and_a_call_may_extend_it(scripted_server: ScriptedServer) -> None:
    scripted_server.delay_s = 0.5
    with Copyloop(scripted_config(scripted_server, timeout_s=0.1)) as client:
        started = time.perf_counter()
        with pytest.raises(DeadlineExceededError):
            client.get_profile("u1")
        assert time.perf_counter() - started < 0.45
        reply = client.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id="u2"), timeout=5
        )
        assert reply.profile.user_id == "u2"


def test_a_service_that_is_down_raises_unavailable_after_retries(
    platform: ThreadedPlatform,
) -> None:
    with (
        Copyloop(
            ClientConfig(
                addresses={
                    s: "127.0.0.1:1" for s in ("profile", "generation", "prediction", "fusion")
                },
                api_key=API_KEY,
                timeout_s=5,
                retry=RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02),
            )
        ) as client,
        pytest.raises(UnavailableError) as err,
    ):
        client.recommend("u1")
    assert err.value.retry_after_s is None and isinstance(err.value, CopyloopError)
