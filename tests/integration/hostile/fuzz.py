"""Hostile requests for every RPC of the four services, and a platform to send them to.

One generator serves both the property-based suite (hypothesis drives the `random.Random`) and
bench/hostile_input.py (a seeded `random.Random`): a plausible request for the RPC, built from
ids that exist, then one to three fields anywhere in it replaced by something hostile (NUL
bytes, strings longer than any column, NaN and infinities, int32/int64 edges, unknown enum
numbers, timestamps outside 1970..9999, forged page tokens, oversized lists), sometimes with
another tenant's ids. The only acceptable answers are the documented statuses.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from copyloop.platform import Platform, PlatformConfig, start_platform
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    generation_pb2,
    prediction_pb2,
    profile_pb2,
)

ATTACKER_KEY = "fuzz-key-a"
VICTIM_KEY = "fuzz-key-victim"
API_KEYS = f"{ATTACKER_KEY}:tenant-fuzz,{VICTIM_KEY}:tenant-victim"
# Every victim string carries this marker; the attacker never sends it, so a reply holding it
# is a cross-tenant leak.
MARKER = "VICTIMSECRET"
CALL_TIMEOUT_S = 30.0
# Oversized lists stop near here: a bit above gRPC's 4 MB message limit (so the size limit is
# probed too) without building gigabyte requests in the client.
MAX_REQUEST_BYTES = 5_000_000

# The documented answers. UNAVAILABLE only for a dependency that is really down (none is here)
# and DEADLINE_EXCEEDED only when the caller's deadline passes (never here: nothing is slow).
ACCEPTABLE = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

SERVICES = {
    "profile": profile_pb2.DESCRIPTOR.services_by_name["ProfileService"],
    "prediction": prediction_pb2.DESCRIPTOR.services_by_name["PredictionService"],
    "fusion": fusion_pb2.DESCRIPTOR.services_by_name["FusionService"],
    "generation": generation_pb2.DESCRIPTOR.services_by_name["GenerationService"],
}


def all_rpcs() -> list[str]:
    """Every RPC as "service.Method", from the protos (so a new RPC is fuzzed without edits)."""
    return [f"{s}.{m.name}" for s, d in SERVICES.items() for m in d.methods]


def method_of(rpc: str) -> MethodDescriptor:
    service, name = rpc.split(".")
    return SERVICES[service].methods_by_name[name]


def request_class(rpc: str) -> type[Message]:
    return message_factory.GetMessageClass(method_of(rpc).input_type)


# ---- hostile values -----------------------------------------------------------------------

NOW = time.time()
HOSTILE_STRINGS: list[Callable[[random.Random], str]] = [
    lambda r: "",
    lambda r: "\x00",
    lambda r: "id\x00with-nul",
    lambda r: "x" * r.choice([17, 33, 65, 129, 161, 257, 501, 2001]),
    lambda r: "y" * r.choice([10_000, 100_000, 1_000_000]),
    lambda r: "é" * r.choice([65, 129, 300]),
    lambda r: "😀" * 70,
    lambda r: "   ",
    lambda r: "\n\t\r",
    lambda r: "../../../../etc/passwd",
    lambda r: "' OR 1=1; DROP TABLE items; --",
    lambda r: "Bеst in the wоrld",  # Cyrillic е and о
    lambda r: "99999999999999999999999999",
    lambda r: "-1",
    lambda r: "NaN",
    lambda r: "v999",
    lambda r: "a@b." * 2000 + "c",
    lambda r: "%s%n{0}${jndi:x}",
    lambda r: "\u202eevil\u200b",
]
HOSTILE_DOUBLES = [
    float("nan"),
    float("inf"),
    float("-inf"),
    -1.0,
    -0.0,
    0.0,
    1e308,
    -1e308,
    1e9 + 1,
    5e-324,
    2.0**53,
    0.5,
    1.5,
    100.0,
]
INT32_EDGES = [-(2**31), -1, 0, 1, 7, 2**31 - 1]
INT64_EDGES = [*INT32_EDGES, 2**31, 2**32, 10**12, 2**53 + 1, 2**63 - 1, -(2**63)]
TIMESTAMP_SECONDS = [
    -62_135_596_800,  # year 1
    -1,
    0,
    1,
    int(NOW) - 86_400,
    int(NOW),
    int(NOW) + 3 * 86_400,
    253_402_300_799,  # 9999-12-31T23:59:59
    253_402_300_800,
    2**40,
    -(2**62),
]


def forged_page_token(r: random.Random) -> str:
    """A token that decodes like a real one (the filter hash is guessable) with a hostile key."""
    after = r.choice(
        [
            "\x00",
            "9" * 40,
            "²³",
            "-5",
            "x" * 5000,
            {"a": 1},
            None,
            1e308,
        ]
    )
    query: Any = r.choice(
        [
            "experiments",
            "versions",
            "templates",
            "x",
            {"item_id": "", "status": 0},
            ["creative-performance", "", 1],  # ListCreativePerformance's default filters
        ]
    )
    digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()
    payload = r.choice(
        [
            {"after": after, "q": digest[:16]},
            {"after": after},
            [after],
            "not an object",
        ]
    )
    raw = json.dumps(payload).encode()
    return r.choice(
        [
            base64.urlsafe_b64encode(raw).decode(),
            "!!!not-base64!!!",
            base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
            "x" * 3000,
        ]
    )


@dataclass
class Pools:
    """Ids that exist, for the attacker's tenant and for the victim's."""

    item_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    experiment_ids: list[str] = field(default_factory=list)
    creative_ids: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    impression_ids: list[str] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)
    victim: dict[str, list[str]] = field(default_factory=dict)

    def pick(self, r: random.Random, kind: str) -> str:
        """Mostly the attacker's own ids, sometimes the victim's (cross-tenant)."""
        own: list[str] = getattr(self, kind)
        theirs = self.victim.get(kind, [])
        if theirs and r.random() > 0.75:
            return r.choice(theirs)
        return r.choice(own) if own else f"missing-{kind}"


def hostile_scalar(f: FieldDescriptor, r: random.Random, pools: Pools) -> Any:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        if f.name == "page_token":
            return forged_page_token(r)
        if r.random() < 0.2:
            kind = r.choice(["item_ids", "user_ids", "creative_ids", "experiment_ids"])
            return pools.pick(r, kind)
        return r.choice(HOSTILE_STRINGS)(r)
    if t == FieldDescriptor.TYPE_BYTES:
        return r.choice([b"", b"\x00" * 10, b"x" * 100_000])
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        value = r.choice(HOSTILE_DOUBLES)
        return value if t == FieldDescriptor.TYPE_DOUBLE or abs(value) < 3e38 else float("inf")
    if t == FieldDescriptor.TYPE_BOOL:
        return r.random() < 0.5
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        return r.choice([*known, -1, 99, 2**31 - 1])
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        return r.choice(INT32_EDGES)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return r.choice([0, 1, 2**31, 2**32 - 1])
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return r.choice([0, 1, 2**63, 2**64 - 1])
    return r.choice(INT64_EDGES)


def _is_timestamp(d: Descriptor) -> bool:
    return d.full_name == "google.protobuf.Timestamp"


def field_paths(d: Descriptor, depth: int = 4) -> list[tuple[FieldDescriptor, ...]]:
    """Every field reachable from the message, as chains of fields (depth-limited)."""
    paths: list[tuple[FieldDescriptor, ...]] = []
    for f in d.fields:
        paths.append((f,))
        sub = f.message_type
        if (
            depth > 1
            and sub is not None
            and not sub.GetOptions().map_entry
            and not _is_timestamp(sub)
        ):
            paths.extend((f, *rest) for rest in field_paths(sub, depth - 1))
    return paths


def _is_map(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _set_leaf(msg: Message, f: FieldDescriptor, r: random.Random, pools: Pools) -> None:
    sub = f.message_type
    if _is_map(f):
        container = getattr(msg, f.name)
        value_field = sub.fields_by_name["value"]
        entries = r.choice([1, 2, 150])
        for _ in range(entries):
            key = r.choice(HOSTILE_STRINGS)(r)[:300] or "k"
            if value_field.message_type is None:
                value = hostile_scalar(value_field, r, pools)
                if isinstance(value, str):
                    value = value[: MAX_REQUEST_BYTES // entries]
                container[key] = value
        return
    if f.is_repeated:
        container = getattr(msg, f.name)
        how = r.random()
        if how < 0.2:
            del container[:]
        elif sub is None:
            count = r.choice([1, 2, 1001, 10_001]) if how > 0.85 else 1
            value = hostile_scalar(f, r, pools)
            if isinstance(value, str | bytes):
                count = max(1, min(count, MAX_REQUEST_BYTES // max(1, len(value))))
            container.extend([value] * count)
        else:
            element = container[0] if len(container) else container.add()
            if how > 0.85:
                count = r.choice([1001, 10_001])
                count = max(1, min(count, MAX_REQUEST_BYTES // max(1, element.ByteSize())))
                for _ in range(count):
                    container.add().CopyFrom(element)
            else:
                _mutate_message(container.add() if r.random() < 0.3 else element, r, pools)
        return
    if sub is not None:
        target = getattr(msg, f.name)
        if _is_timestamp(sub):
            target.seconds = r.choice(TIMESTAMP_SECONDS)
            target.nanos = r.choice([0, 0, 999_999_999, -1, 1_000_000_000])
        elif r.random() < 0.2:
            msg.ClearField(f.name)
        else:
            _mutate_message(target, r, pools)
        return
    setattr(msg, f.name, hostile_scalar(f, r, pools))


def _mutate_message(msg: Message, r: random.Random, pools: Pools) -> None:
    fields = list(msg.DESCRIPTOR.fields)
    if fields:
        _set_leaf(msg, r.choice(fields), r, pools)


def mutate(msg: Message, r: random.Random, pools: Pools) -> None:
    """Replaces one field somewhere in the message by a hostile value."""
    path = r.choice(field_paths(msg.DESCRIPTOR))
    target = msg
    for f in path[:-1]:
        if f.is_repeated:
            container = getattr(target, f.name)
            target = r.choice(list(container)) if len(container) else container.add()
        else:
            target = getattr(target, f.name)
    _set_leaf(target, path[-1], r, pools)


# ---- plausible requests ---------------------------------------------------------------------


def ts(epoch: float) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.seconds = int(epoch)
    return t


def item(item_id: str, title: str = "Trail Runner Shoe", price: float = 59.0) -> common_pb2.Item:
    return common_pb2.Item(
        item_id=item_id,
        title=title,
        brand="Acme",
        category_path=["Shoes", "Running"],
        price=price,
        list_price=price * 1.2,
        currency_code="USD",
        attributes={"color": "red"},
        selling_points=["Lightweight mesh upper"],
        tags=["sport"],
        stock=5,
        version=1,
    )


CTX = common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US")


def event(r: random.Random, pools: Pools, n: int = 0) -> profile_pb2.Event:
    return profile_pb2.Event(
        event_id=f"ev-{r.getrandbits(48):x}-{n}",
        user_id=pools.pick(r, "user_ids"),
        type=r.choice([1, 2, 3, 4, 6]),
        item_id=pools.pick(r, "item_ids"),
        event_time=ts(NOW - r.random() * 86_400),
        quantity=1,
        price=19.99,
        context=CTX,
    )


def profile_msg(user_id: str) -> common_pb2.UserProfile:
    return common_pb2.UserProfile(
        user_id=user_id,
        category_affinities=[common_pb2.AffinityScore(key="Shoes", score=3.0, share=1.0)],
        price_band=common_pb2.PRICE_BAND_MID,
        mean_engaged_price=50.0,
        recency_days=1.0,
        frequency_30d=3,
        monetary_total=120.0,
        purchase_count=2,
        event_count=5,
        segments=["returning"],
    )


def base_request(rpc: str, r: random.Random, pools: Pools) -> Message:
    """A request that would mostly succeed: the fuzzer then breaks one part of it."""
    P, F, G, PR = profile_pb2, fusion_pb2, generation_pb2, prediction_pb2
    user = pools.pick(r, "user_ids")
    item_id = pools.pick(r, "item_ids")
    gen = G.GenerateRequest(
        item=item(item_id),
        audience=G.Audience(segment="returning"),
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        variant_count=1,
    )
    cand = PR.ScoreCandidate(item=item(item_id), creative_id="c1", copy_text="Run lighter.")
    window = PR.TimeWindow(start_time=ts(NOW - 10 * 86_400), end_time=ts(NOW - 86_400))
    later = PR.TimeWindow(start_time=ts(NOW - 86_400), end_time=ts(NOW))
    builders: dict[str, Callable[[], Message]] = {
        "profile.UpsertItems": lambda: P.UpsertItemsRequest(
            items=[item(f"fz-{r.getrandbits(32):x}")]
        ),
        "profile.GetItems": lambda: P.GetItemsRequest(item_ids=[item_id]),
        "profile.ListItems": lambda: P.ListItemsRequest(page_size=5),
        "profile.IngestEvents": lambda: P.IngestEventsRequest(
            events=[event(r, pools, n) for n in range(3)]
        ),
        "profile.IngestEventStream": lambda: P.IngestEventStreamRequest(
            events=[event(r, pools, n) for n in range(3)]
        ),
        "profile.GetUserProfile": lambda: P.GetUserProfileRequest(user_id=user),
        "profile.RecallItems": lambda: P.RecallItemsRequest(user_id=user, k=5),
        "profile.DeleteUser": lambda: P.DeleteUserRequest(user_id=f"gone-{r.getrandbits(16)}"),
        "prediction.Score": lambda: PR.ScoreRequest(
            user_id=user, profile=profile_msg(user), context=CTX, candidates=[cand]
        ),
        "prediction.LogImpressions": lambda: PR.LogImpressionsRequest(
            impressions=[
                PR.Impression(
                    impression_id=f"imp-{r.getrandbits(40):x}",
                    request_id="req-1",
                    user_id=user,
                    profile=profile_msg(user),
                    context=CTX,
                    candidate=cand,
                    served_p_ctr=0.05,
                    model_version="prior",
                    impression_time=ts(NOW - 3600),
                )
            ]
        ),
        "prediction.LogOutcomes": lambda: PR.LogOutcomesRequest(
            outcomes=[
                PR.Outcome(
                    outcome_id=f"out-{r.getrandbits(40):x}",
                    impression_id=pools.pick(r, "impression_ids"),
                    type=PR.OUTCOME_TYPE_CLICK,
                    outcome_time=ts(NOW - 60),
                )
            ]
        ),
        "prediction.TrainModel": lambda: PR.TrainModelRequest(
            train_window=window, eval_window=later, epochs=1
        ),
        "prediction.PromoteModel": lambda: PR.PromoteModelRequest(
            version=pools.pick(r, "model_versions")
        ),
        "prediction.RollbackModel": lambda: PR.RollbackModelRequest(),
        "prediction.GetModelVersion": lambda: PR.GetModelVersionRequest(
            version=pools.pick(r, "model_versions")
        ),
        "prediction.ListModelVersions": lambda: PR.ListModelVersionsRequest(page_size=2),
        "fusion.Recommend": lambda: F.RecommendRequest(
            user_id=user, context=CTX, n=3, latency_budget_ms=5000
        ),
        "fusion.ReportOutcome": lambda: F.ReportOutcomeRequest(
            events=[
                F.OutcomeEvent(
                    event_id=f"fo-{r.getrandbits(40):x}",
                    request_id=pools.pick(r, "request_ids"),
                    impression_id=pools.pick(r, "impression_ids"),
                    type=F.FEEDBACK_TYPE_CLICK,
                    event_time=ts(NOW - 30),
                )
            ]
        ),
        "fusion.CreateExperiment": lambda: F.CreateExperimentRequest(
            experiment_id=f"fz-{r.getrandbits(24):x}",
            display_name="fuzz",
            arms=[
                F.Arm(arm_id="a", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
                F.Arm(
                    arm_id="b",
                    strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT,
                    traffic_weight=1,
                    copywriter_version=r.choice(["", "2"]),
                    prompt_template_version=r.choice(["", "v2"]),
                ),
            ],
        ),
        "fusion.GetExperiment": lambda: F.GetExperimentRequest(
            experiment_id=pools.pick(r, "experiment_ids")
        ),
        "fusion.ListExperiments": lambda: F.ListExperimentsRequest(page_size=2),
        "fusion.StopExperiment": lambda: F.StopExperimentRequest(
            experiment_id=pools.pick(r, "experiment_ids")
        ),
        "fusion.GetExperimentReport": lambda: F.GetExperimentReportRequest(
            experiment_id=pools.pick(r, "experiment_ids"), include_chart=r.random() < 0.2
        ),
        "fusion.RetrainModel": lambda: F.RetrainModelRequest(window_days=7),
        "fusion.ListCreativePerformance": lambda: F.ListCreativePerformanceRequest(
            page_size=r.choice([0, 1, 5]),
            min_impressions=r.choice([0, 1, 50]),
            segment=r.choice(["", "new_user", "deal_seeker"]),
        ),
        "generation.Generate": lambda: gen,
        "generation.GenerateStream": lambda: G.GenerateStreamRequest(request=gen),
        "generation.GetCreatives": lambda: G.GetCreativesRequest(
            queries=[G.CreativeQuery(item_id=item_id)],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
        ),
        "generation.ListCreatives": lambda: G.ListCreativesRequest(page_size=3),
        "generation.ApproveCreative": lambda: G.ApproveCreativeRequest(
            creative_id=pools.pick(r, "creative_ids"), reviewer="qa"
        ),
        "generation.RetireCreative": lambda: G.RetireCreativeRequest(
            creative_id=pools.pick(r, "creative_ids"), reason="fuzz"
        ),
        "generation.PregenerateCreatives": lambda: G.PregenerateCreativesRequest(
            items=[item(item_id)],
            channels=[common_pb2.CHANNEL_PUSH],
            locales=["en-US"],
            variants_per_item=1,
        ),
        "generation.GetPregenerationJob": lambda: G.GetPregenerationJobRequest(
            job_id=pools.pick(r, "job_ids")
        ),
        "generation.ListPromptTemplates": lambda: G.ListPromptTemplatesRequest(page_size=1),
        "generation.ReviewCopy": lambda: G.ReviewCopyRequest(
            item=item(item_id),
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            text="Trail Runner Shoe: lightweight mesh upper.",
        ),
    }
    # An RPC added since this list was written is fuzzed from an empty request.
    return builders.get(rpc, request_class(rpc))()


def hostile_request(rpc: str, r: random.Random, pools: Pools) -> Message:
    """A plausible request with one to three hostile fields (sometimes none: the happy path
    must keep working too)."""
    msg = base_request(rpc, r, pools)
    for _ in range(r.choice([0, 1, 1, 1, 2, 3])):
        mutate(msg, r, pools)
    return msg


# ---- the platform under attack --------------------------------------------------------------


@dataclass
class CallResult:
    code: grpc.StatusCode
    reply: bytes  # every reply message, concatenated (to look for leaks)
    detail: str


class Target:
    """The four services in one background event loop, called from this thread with blocking
    stubs, so a hung server shows as a client deadline and not as a hung test."""

    def __init__(self, var_dir: Path, database_urls: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        cfg = PlatformConfig(
            var_dir=var_dir,
            api_keys=API_KEYS,
            embedder="hashing",
            database_urls=database_urls,
        )
        self.platform: Platform = self._run(start_platform(cfg), 180)
        self.channels = {
            name: grpc.insecure_channel(address)
            for name, address in self.platform.addresses().items()
        }
        self.pools = Pools()

    def _run(self, coro: Any, timeout: float) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def call(self, rpc: str, request: Message, key: str = ATTACKER_KEY) -> CallResult:
        service, name = rpc.split(".")
        m = method_of(rpc)
        path = f"/{m.containing_service.full_name}/{name}"
        reply_class = message_factory.GetMessageClass(m.output_type)
        channel = self.channels[service]
        metadata = (("authorization", f"Bearer {key}"),)
        kwargs = {
            "request_serializer": lambda x: x.SerializeToString(),
            "response_deserializer": reply_class.FromString,
        }
        try:
            if m.client_streaming:
                stream_call = channel.stream_unary(path, **kwargs)
                reply = stream_call(iter([request]), timeout=CALL_TIMEOUT_S, metadata=metadata)
                return CallResult(grpc.StatusCode.OK, reply.SerializeToString(), "")
            if m.server_streaming:
                stream = channel.unary_stream(path, **kwargs)
                parts = [
                    p.SerializeToString()
                    for p in stream(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
                ]
                return CallResult(grpc.StatusCode.OK, b"".join(parts), "")
            unary = channel.unary_unary(path, **kwargs)
            reply = unary(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
            return CallResult(grpc.StatusCode.OK, reply.SerializeToString(), "")
        except grpc.RpcError as e:
            return CallResult(e.code(), (e.details() or "").encode(), e.details() or "")

    def healthy(self, within_s: float = 15.0) -> bool:
        """Every service answers its health check with SERVING (within a few seconds: a
        readiness probe may lag behind a burst of big requests, a crashed or hung server never
        recovers)."""
        deadline = time.monotonic() + within_s
        pending = dict(self.channels)
        while pending and time.monotonic() < deadline:
            for name, channel in list(pending.items()):
                try:
                    status = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=5
                    )
                except grpc.RpcError:
                    continue
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    del pending[name]
            if pending:
                time.sleep(0.5)
        return not pending

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self._run(self.platform.stop(0), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    # ---- seeding ----------------------------------------------------------------------------

    def seed(self) -> None:
        """Catalog, events, an experiment, served recommendations, pooled creatives and a job
        for the attacker's tenant and for the victim's (whose strings carry MARKER)."""
        r = random.Random(7)
        self.pools.victim = self._seed_tenant(VICTIM_KEY, "victim", MARKER, r, Pools())
        own = Pools()
        self._seed_tenant(ATTACKER_KEY, "own", "Trail", r, own)
        own.victim = self.pools.victim
        self.pools = own

    def _seed_tenant(
        self, key: str, prefix: str, word: str, r: random.Random, pools: Pools
    ) -> dict[str, list[str]]:
        P, F, G = profile_pb2, fusion_pb2, generation_pb2
        items = [item(f"{prefix}-item-{n}", f"{word} Shoe {n}", 20.0 + n) for n in range(8)]
        self._ok("profile.UpsertItems", P.UpsertItemsRequest(items=items), key)
        pools.item_ids = [i.item_id for i in items]
        pools.user_ids = [f"{prefix}-user-{n}" for n in range(4)]
        events = [
            P.Event(
                event_id=f"{prefix}-ev-{n}",
                user_id=pools.user_ids[n % 4],
                type=[1, 2, 4][n % 3],
                item_id=pools.item_ids[n % 8],
                event_time=ts(NOW - 3600 * n),
                price=30.0,
                context=CTX,
            )
            for n in range(24)
        ]
        self._ok("profile.IngestEvents", P.IngestEventsRequest(events=events), key)
        exp = F.CreateExperimentRequest(
            experiment_id=f"{prefix}-exp",
            display_name=f"{word} experiment",
            arms=[
                F.Arm(arm_id="control", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
                F.Arm(
                    arm_id="bandit", strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT, traffic_weight=1
                ),
            ],
        )
        self._ok("fusion.CreateExperiment", exp, key)
        pools.experiment_ids = [exp.experiment_id]
        for user in pools.user_ids:
            reply = fusion_pb2.RecommendResponse.FromString(
                self._ok(
                    "fusion.Recommend",
                    F.RecommendRequest(
                        user_id=user,
                        context=CTX,
                        n=2,
                        experiment_id=exp.experiment_id,
                        latency_budget_ms=10_000,
                    ),
                    key,
                )
            )
            pools.request_ids.append(reply.request_id)
            pools.impression_ids += [x.impression_id for x in reply.recommendations]
        gen = G.GenerateRequest(
            item=items[0],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            variant_count=2,
            store_in_pool=True,
        )
        reply_g = G.GenerateResponse.FromString(self._ok("generation.Generate", gen, key))
        pools.creative_ids = [v.creative_id for v in reply_g.variants if v.creative_id]
        job = G.PregenerateCreativesResponse.FromString(
            self._ok(
                "generation.PregenerateCreatives",
                G.PregenerateCreativesRequest(
                    items=items[:2],
                    channels=[common_pb2.CHANNEL_PUSH],
                    locales=["en-US"],
                    variants_per_item=1,
                ),
                key,
            )
        )
        pools.job_ids = [job.job.job_id]
        self._wait_for_job(job.job.job_id, key)
        pools.model_versions = ["v1", "prior"]
        return {
            "item_ids": pools.item_ids,
            "user_ids": pools.user_ids,
            "experiment_ids": pools.experiment_ids,
            "creative_ids": pools.creative_ids,
            "job_ids": pools.job_ids,
            "request_ids": pools.request_ids,
            "impression_ids": pools.impression_ids,
        }

    def _wait_for_job(self, job_id: str, key: str, timeout_s: float = 120.0) -> None:
        G = generation_pb2
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = G.GetPregenerationJobResponse.FromString(
                self._ok(
                    "generation.GetPregenerationJob",
                    G.GetPregenerationJobRequest(job_id=job_id),
                    key,
                )
            ).job
            if job.state in (G.JOB_STATE_SUCCEEDED, G.JOB_STATE_FAILED):
                return
            time.sleep(0.2)
        raise RuntimeError(f"pre-generation job {job_id} did not finish")

    def _ok(self, rpc: str, request: Message, key: str) -> bytes:
        result = self.call(rpc, request, key)
        if result.code != grpc.StatusCode.OK:
            raise RuntimeError(f"seeding {rpc} failed: {result.code.name} {result.detail}")
        return result.reply

    def victim_snapshot(self) -> dict[str, Any]:
        """What must not change however the attacker calls: the victim's items, profiles,
        experiments, creatives."""
        P, F, G = profile_pb2, fusion_pb2, generation_pb2
        v = self.pools.victim
        items = P.GetItemsResponse.FromString(
            self._ok("profile.GetItems", P.GetItemsRequest(item_ids=v["item_ids"]), VICTIM_KEY)
        )
        profiles = []
        for user in v["user_ids"]:
            p = P.GetUserProfileResponse.FromString(
                self._ok(
                    "profile.GetUserProfile", P.GetUserProfileRequest(user_id=user), VICTIM_KEY
                )
            ).profile
            profiles.append((p.user_id, p.event_count, p.purchase_count, p.monetary_total))
        experiments = [
            F.GetExperimentResponse.FromString(
                self._ok(
                    "fusion.GetExperiment", F.GetExperimentRequest(experiment_id=e), VICTIM_KEY
                )
            ).experiment.SerializeToString()
            for e in v["experiment_ids"]
        ]
        creatives = G.ListCreativesResponse.FromString(
            self._ok("generation.ListCreatives", G.ListCreativesRequest(page_size=100), VICTIM_KEY)
        )
        return {
            "items": sorted((i.item_id, i.version, i.title) for i in items.items),
            "profiles": profiles,
            "experiments": experiments,
            "creatives": sorted((c.creative_id, c.status, c.text) for c in creatives.creatives),
        }


def iter_rpcs(selected: str = "") -> Iterator[str]:
    for rpc in all_rpcs():
        if not selected or selected in rpc:
            yield rpc
