"""The ghz configs in deploy/loadtest: offline, each call exists in the protoset built from
protos/, its data (templates rendered) parses into the request type and its key authenticates;
live, against real services on free ports, reflection lists each call and the request is
accepted as sent. bench/load.py's driver runs a short load through the same code."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from bench import load
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.unit.deploy.compose_file import environment, load_compose
from tests.unit.deploy.service_table import SERVICES

from copyloop.common.config import DEFAULT_API_KEYS, parse_api_keys

REPO = Path(__file__).resolve().parents[3]
LOADTEST = REPO / "deploy" / "loadtest"
CONFIGS = sorted(LOADTEST.glob("*.json"))
HOT_CALLS = {
    "copyloop.v1.FusionService/Recommend",
    "copyloop.v1.PredictionService/Score",
    "copyloop.v1.GenerationService/GetCreatives",
    "copyloop.v1.ProfileService/IngestEvents",
    "copyloop.v1.ProfileService/GetUserProfile",
}
# Where each service's `start_*` lives; a service whose module cannot be imported yet has its
# live checks marked xfail.
SERVICE_MODULES = {
    "copyloop.v1.ProfileService": "copyloop.profile.main",
    "copyloop.v1.GenerationService": "copyloop.generation.main",
    "copyloop.v1.PredictionService": "copyloop.prediction.main",
    "copyloop.v1.FusionService": "copyloop.fusion.main",
}


# ---------------------------------------------------------------------------------------------
# Live services: one async starter per service, in STARTERS (a new service: one more line)
# ---------------------------------------------------------------------------------------------


class Running(Protocol):
    """What a starter returns: the service's address and how to stop it."""

    @property
    def address(self) -> str: ...

    async def stop(self, grace: float | None = None) -> None: ...


# A starter gets a scratch folder and the addresses of the services started before it.
Starter = Callable[[Path, dict[str, str]], Awaitable[Running]]


async def start_profile(workdir: Path, _addresses: dict[str, str]) -> Running:
    from copyloop.demo.catalog import generate_catalog
    from copyloop.demo.loader import load_catalog
    from copyloop.profile.main import start_profile_service
    from copyloop.profile.settings import ProfileSettings
    from copyloop.v1 import profile_pb2_grpc

    service = await start_profile_service(
        ProfileSettings(
            port=0,
            database_url=f"sqlite:///{workdir / 'profile.db'}",
            api_keys=DEFAULT_API_KEYS,
        )
    )
    # The demo catalog the configs' item ids (demo-00100 ... demo-00239) come from.
    async with grpc.aio.insecure_channel(service.address) as channel:
        await load_catalog(
            profile_pb2_grpc.ProfileServiceStub(channel), generate_catalog(240), _auth()
        )
    return service


async def start_generation(workdir: Path, _addresses: dict[str, str]) -> Running:
    from copyloop.generation.main import start_generation_service
    from copyloop.generation.settings import GenerationSettings

    return await start_generation_service(
        GenerationSettings(
            port=0,
            database_url=f"sqlite:///{workdir / 'generation.db'}",
            api_keys=DEFAULT_API_KEYS,
        )
    )


async def start_prediction(workdir: Path, _addresses: dict[str, str]) -> Running:
    from copyloop.prediction.main import start_prediction_service
    from copyloop.prediction.settings import PredictionSettings

    return await start_prediction_service(
        PredictionSettings(
            port=0,
            database_url=f"sqlite:///{workdir / 'prediction.db'}",
            api_keys=DEFAULT_API_KEYS,
            model_root=str(workdir / "models"),
            embedder="hashing",
        )
    )


async def start_fusion(workdir: Path, addresses: dict[str, str]) -> Running:
    from copyloop.fusion.main import start_fusion_service
    from copyloop.fusion.settings import FusionSettings

    return await start_fusion_service(
        FusionSettings(
            port=0,
            database_url=f"sqlite:///{workdir / 'fusion.db'}",
            api_keys=DEFAULT_API_KEYS,
            profile_addr=addresses["copyloop.v1.ProfileService"],
            generation_addr=addresses["copyloop.v1.GenerationService"],
            prediction_addr=addresses["copyloop.v1.PredictionService"],
        )
    )


# In start order: Fusion needs the other three's addresses.
STARTERS: dict[str, Starter] = {
    "copyloop.v1.ProfileService": start_profile,
    "copyloop.v1.GenerationService": start_generation,
    "copyloop.v1.PredictionService": start_prediction,
    "copyloop.v1.FusionService": start_fusion,
}

# Checks of the reply beyond "OK", per call.


def _ingest_applied_every_event(request: Any, reply: Any) -> None:
    summary = reply.summary
    assert (summary.accepted, summary.rejected) == (len(request.events), 0), reply


def _one_entry_per_query(request: Any, reply: Any) -> None:
    assert [i.item_id for i in reply.items] == [q.item_id for q in request.queries]


def _profile_of_the_user(request: Any, reply: Any) -> None:
    assert reply.profile.user_id == request.user_id


def _one_score_per_candidate(request: Any, reply: Any) -> None:
    assert [s.item_id for s in reply.scores] == [c.item.item_id for c in request.candidates]
    assert all(0 <= s.p_ctr <= 1 and 0 <= s.p_cvr <= 1 for s in reply.scores)


def _ranked_items_with_copy(request: Any, reply: Any) -> None:
    recommendations = reply.recommendations
    assert 0 < len(recommendations) <= request.n
    assert [r.rank for r in recommendations] == list(range(1, len(recommendations) + 1))
    assert all(r.copy.text and r.impression_id for r in recommendations)


REPLY_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "copyloop.v1.ProfileService/IngestEvents": _ingest_applied_every_event,
    "copyloop.v1.ProfileService/GetUserProfile": _profile_of_the_user,
    "copyloop.v1.GenerationService/GetCreatives": _one_entry_per_query,
    "copyloop.v1.PredictionService/Score": _one_score_per_candidate,
    "copyloop.v1.FusionService/Recommend": _ranked_items_with_copy,
}


def _auth(key: str = "demo-key") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _service_of(config: load.GhzConfig) -> str:
    return config.call.split("/")[0]


def _live_params() -> list[Any]:
    params = []
    for path in CONFIGS:
        service = _service_of(load.load_ghz_config(path))
        marks = []
        if service not in STARTERS and not _importable(SERVICE_MODULES[service]):
            marks.append(pytest.mark.xfail(strict=False, reason="service not built yet"))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protoset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built fresh from protos/ by the documented script (never a stale copy)."""
    out = tmp_path_factory.mktemp("protoset") / "copyloop.protoset"
    done = subprocess.run(
        ["bash", str(LOADTEST / "build_protoset.sh"), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def pool(protoset: Path) -> Any:
    return load.load_protoset(protoset)


@dataclass
class LiveServices:
    addresses: dict[str, str]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServices]:
    workdir = tmp_path_factory.mktemp("live")
    running: dict[str, Running] = {}
    try:
        for service, starter in STARTERS.items():
            running[service] = await starter(workdir, {n: r.address for n, r in running.items()})
        yield LiveServices({name: r.address for name, r in running.items()})
    finally:
        for r in running.values():
            await r.stop(0)


def _request_for(
    config: load.GhzConfig,
    method: load.RpcMethod,
    number: int = 0,
) -> tuple[Any, tuple[tuple[str, str], ...]]:
    factory = load.RequestFactory(method, config.data, config.metadata, random.Random(number))
    return factory.build("test", number)


# ---------------------------------------------------------------------------------------------
# Offline
# ---------------------------------------------------------------------------------------------


def test_there_is_one_config_per_hot_rpc() -> None:
    calls = [load.load_ghz_config(p).call for p in CONFIGS]
    assert sorted(calls) == sorted(HOT_CALLS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_a_ghz_config_that_works_without_reflection(path: Path) -> None:
    config = load.load_ghz_config(path)  # rejects keys ghz does not know
    raw = json.loads(path.read_text())
    assert raw["protoset"] == "copyloop.protoset" and raw["insecure"] is True
    assert raw["metadata"] == {"authorization": "Bearer demo-key"}
    host, port = config.host.rsplit(":", 1)
    assert host == "127.0.0.1"
    owner = _service_of(config).removeprefix("copyloop.v1.").removesuffix("Service").lower()
    assert int(port) == SERVICES[owner].grpc_port, "the config targets another service's port"
    assert config.duration_s or config.total, "a ghz run must stop by itself"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_call_exists_in_the_protoset(path: Path, pool: Any) -> None:
    method = load.resolve_method(pool, load.load_ghz_config(path).call)
    assert method.path == "/" + load.load_ghz_config(path).call


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_rendered_data_parses_into_the_request_type(path: Path, pool: Any) -> None:
    config = load.load_ghz_config(path)
    method = load.resolve_method(pool, config.call)
    first, _ = _request_for(config, method, 0)
    second, _ = _request_for(config, method, 1)
    text = str(first)
    assert "{{" not in text and "}}" not in text
    assert first.DESCRIPTOR.full_name == method.descriptor.input_type.full_name
    assert first.ByteSize() > 0
    if config.call.endswith("/IngestEvents"):
        ids = [e.event_id for e in [*first.events, *second.events]]
        assert len(ids) == len(set(ids)), "event ids must be unique across calls (idempotency keys)"
        assert all(e.event_time.seconds > 0 for e in first.events)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_metadata_key_is_one_the_default_deployments_accept(path: Path) -> None:
    auth = load.load_ghz_config(path).metadata["authorization"]
    scheme, _, key = auth.partition(" ")
    assert scheme == "Bearer"
    assert key in parse_api_keys(DEFAULT_API_KEYS)
    compose = load_compose(REPO / "docker-compose.yml")
    owner = (
        _service_of(load.load_ghz_config(path))
        .removeprefix("copyloop.v1.")
        .removesuffix("Service")
        .lower()
    )
    assert key in parse_api_keys(environment(compose["services"][owner])["COPYLOOP_API_KEYS"])


# ---------------------------------------------------------------------------------------------
# Live
# ---------------------------------------------------------------------------------------------


async def _reflected_methods(address: str, service: str) -> tuple[list[str], set[str]]:
    """(services listed by reflection, method names of `service` from its reflected file)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
        ]
        replies = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    listed = [s.name for s in replies[0].list_services_response.service]
    methods: set[str] = set()
    for blob in replies[1].file_descriptor_response.file_descriptor_proto:
        file_proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for svc in file_proto.service:
            if f"{file_proto.package}.{svc.name}" == service:
                methods |= {m.name for m in svc.method}
    return listed, methods


TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


async def _call_retrying_transient(
    channel: grpc.aio.Channel,
    method: load.RpcMethod,
    request: Any,
    metadata: tuple[tuple[str, str], ...],
    call: str,
    attempts: int = 3,
) -> Any:
    """One call as a client would make it: retried on UNAVAILABLE / DEADLINE_EXCEEDED (a busy
    test machine can blow Recommend's 300 ms budget), failed at once on any other code."""
    for attempt in range(1, attempts + 1):
        try:
            return await load.call_once(channel, method, request, metadata, timeout_s=20)
        except grpc.aio.AioRpcError as err:
            if err.code() not in TRANSIENT or attempt == attempts:
                pytest.fail(f"{call}: {err.code().name}: {err.details()}")
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("path", _live_params())
async def test_live_server_reflects_the_call_and_accepts_the_request(
    path: Path, pool: Any, live: LiveServices
) -> None:
    config = load.load_ghz_config(path)
    service = _service_of(config)
    if service not in live.addresses:
        pytest.fail(f"{SERVICE_MODULES[service]} imports now: add its starter to STARTERS")
    address = live.addresses[service]
    listed, methods = await _reflected_methods(address, service)
    assert service in listed
    assert config.call.split("/")[1] in methods

    method = load.resolve_method(pool, config.call)
    request, metadata = _request_for(config, method, 3)
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await _call_retrying_transient(channel, method, request, metadata, config.call)
        REPLY_CHECKS.get(config.call, lambda _q, _r: None)(request, reply)
        # The key is what made it pass: the same call with an unknown key is refused.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await load.call_once(channel, method, request, _auth("not-a-key"), timeout_s=20)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_load_driver_runs_a_bounded_load_against_a_live_service(
    pool: Any, live: LiveServices
) -> None:
    config = load.load_ghz_config(LOADTEST / "ingest_events.json")
    method = load.resolve_method(pool, config.call)
    requests = load.RequestFactory(method, config.data, config.metadata, random.Random(1))
    plan = load.LoadPlan(concurrency=4, total=24, duration_s=30, timeout_s=10, connections=2)
    results, elapsed = await load.run_load(
        live.addresses["copyloop.v1.ProfileService"], method, requests, plan
    )
    summary = load.summarize(results, elapsed)
    assert summary.count == 24 and summary.status_counts == {"OK": 24}
    assert 0 < summary.fastest_s <= summary.percentiles_s[50] <= summary.slowest_s < elapsed
    # Every call wrote new events: a replayed id would have been counted as a duplicate.
    probe, metadata = requests.build("check", 99)
    async with grpc.aio.insecure_channel(live.addresses["copyloop.v1.ProfileService"]) as channel:
        reply = await load.call_once(channel, method, probe, metadata, timeout_s=10)
    assert reply.summary.duplicate == 0


async def test_load_driver_paces_to_the_requested_rate(pool: Any, live: LiveServices) -> None:
    config = load.load_ghz_config(LOADTEST / "get_user_profile.json")
    method = load.resolve_method(pool, config.call)
    requests = load.RequestFactory(method, config.data, config.metadata, random.Random(2))
    plan = load.LoadPlan(concurrency=4, total=20, duration_s=30, rps=40, timeout_s=10)
    results, elapsed = await load.run_load(
        live.addresses["copyloop.v1.ProfileService"], method, requests, plan
    )
    assert len(results) == 20
    # 20 calls at 40/s: the last is due at 19/40 s; unpaced they would take a few ms.
    assert elapsed >= 19 / 40


def test_cli_refuses_a_non_loopback_host_before_sending_anything() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "load.py"),
            str(LOADTEST / "get_user_profile.json"),
            "--host",
            "10.1.2.3:50051",
            "--total",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode != 0 and "non-loopback" in done.stderr
