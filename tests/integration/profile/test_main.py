"""copyloop.profile.main: the service as started (start_profile_service, `python -m
copyloop.profile.main`) on the shared runtime: health tied to the database, reflection, metrics,
graceful shutdown, SIGTERM and start-up validation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.integration.profile.factories import event, item
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.profile.main import start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import profile_pb2

SERVICE = "copyloop.v1.ProfileService"


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_health_and_reflection_need_no_key(profile) -> None:
    assert await health_status(profile.channel) == health_pb2.HealthCheckResponse.SERVING
    assert await health_status(profile.channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(profile.channel)

    async def ask():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for reply in stub.ServerReflectionInfo(ask()):
        names |= {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_metrics_endpoint_counts_requests_by_code(profile) -> None:
    await profile.stub.GetItems(profile_pb2.GetItemsRequest(item_ids=["x"]), metadata=auth())
    with pytest.raises(grpc.aio.AioRpcError):
        await profile.stub.GetItems(profile_pb2.GetItemsRequest(), metadata=auth())
    port = profile.service.server.metrics_port
    body = await asyncio.to_thread(
        lambda: (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
    )
    method = "/copyloop.v1.ProfileService/GetItems"
    assert f'copyloop_grpc_requests_total{{code="OK",method="{method}",service="profile"}}' in body
    assert f'code="INVALID_ARGUMENT",method="{method}"' in body
    assert "copyloop_grpc_request_duration_seconds_bucket" in body
    assert "copyloop_grpc_in_flight_requests" in body


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_health_is_not_serving_while_the_database_is_unreachable(profile) -> None:
    url = make_url(profile.database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def set_connections(allowed: bool) -> None:
        with admin.connect() as conn:
            conn.execute(
                text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
            )
            if not allowed:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": url.database},
                )

    try:
        set_connections(False)
        profile.service.domain.store.engine.dispose()
        assert not await profile.service.server.refresh_health()
        assert await health_status(profile.channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (
            await health_status(profile.channel, SERVICE)
            == health_pb2.HealthCheckResponse.NOT_SERVING
        )
    finally:
        set_connections(True)
    # The readiness watcher brings it back by itself.
    for _ in range(50):
        if await health_status(profile.channel) == health_pb2.HealthCheckResponse.SERVING:
            break
        await asyncio.sleep(0.1)
    assert await health_status(profile.channel) == health_pb2.HealthCheckResponse.SERVING
    admin.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stop_lets_in_flight_stream_finish_and_refuses_new_calls(database_url: str) -> None:
    service = await start_profile_service(
        ProfileSettings(port=0, database_url=database_url, api_keys=API_KEYS, shutdown_grace_s=5)
    )
    channel = grpc.aio.insecure_channel(service.address)
    from copyloop.v1 import profile_pb2_grpc

    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    await stub.UpsertItems(profile_pb2.UpsertItemsRequest(items=[item("a")]), metadata=auth())
    sent_first = asyncio.Event()
    release = asyncio.Event()

    async def chunks():
        yield profile_pb2.IngestEventStreamRequest(
            events=[event("g1", "u", profile_pb2.EVENT_TYPE_VIEW, "a")]
        )
        sent_first.set()
        await release.wait()
        yield profile_pb2.IngestEventStreamRequest(
            events=[event("g2", "u", profile_pb2.EVENT_TYPE_VIEW, "a")]
        )

    async def run_call():
        return await stub.IngestEventStream(chunks(), metadata=auth())

    call = asyncio.create_task(run_call())
    await sent_first.wait()
    await asyncio.sleep(0.2)
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.3)
    # New clients are refused while draining (calls already sent on existing connections are
    # still taken in). A channel of its own connection: in one process, channels to the same
    # address would otherwise share the existing one.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        late = grpc.aio.insecure_channel(
            service.address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        try:
            await profile_pb2_grpc.ProfileServiceStub(late).GetItems(
                profile_pb2.GetItemsRequest(item_ids=["a"]), metadata=auth(), timeout=1
            )
        finally:
            await late.close()
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    release.set()
    reply = await call
    assert reply.summary.accepted == 2
    await stopping
    await channel.close()
    service.domain.close()


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COPYLOOP_PROFILE_PORT": "0",
        "COPYLOOP_PROFILE_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "COPYLOOP_PROFILE_SHUTDOWN_GRACE_S": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "copyloop.profile.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "listening on" in line, proc.stderr.read()  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "draining" in err and "server stopped" in err


def test_bad_setting_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "COPYLOOP_PROFILE_HALF_LIFE_DAYS": "-3", "COPYLOOP_API_KEYS": "nocolon"}
    proc = subprocess.run(
        [sys.executable, "-m", "copyloop.profile.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "COPYLOOP_PROFILE_HALF_LIFE_DAYS" in proc.stderr and "COPYLOOP_API_KEYS" in proc.stderr
    assert "Traceback" not in proc.stderr
