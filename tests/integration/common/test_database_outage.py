"""A database outage is a blip the client retries, not an internal error: ProfileService on a
real PostgreSQL reached through a TCP proxy whose line is cut (open connections reset, new ones
refused) answers UNAVAILABLE with RetryInfo and logs one warning without a traceback; once the
line is back the same call succeeds. A held SQLite lock is answered the same way."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy.engine import make_url
from tests.integration.profile.factories import item
from tests.support.grpc_helpers import API_KEYS, auth, detail
from tests.support.tcp_proxy import TcpProxy

from copyloop.profile.main import ProfileService, start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import profile_pb2, profile_pb2_grpc

P = profile_pb2


async def start(url: str) -> tuple[ProfileService, grpc.aio.Channel]:
    service = await start_profile_service(
        ProfileSettings(port=0, database_url=url, api_keys=API_KEYS, readiness_interval_s=60)
    )
    return service, grpc.aio.insecure_channel(service.address)


@pytest.fixture
async def proxied(
    postgres_databases: Callable[[], str],
) -> AsyncIterator[tuple[TcpProxy, profile_pb2_grpc.ProfileServiceStub]]:
    url = make_url(postgres_databases())
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    service, channel = await start(url.set(port=proxy.port).render_as_string(False))
    try:
        yield proxy, profile_pb2_grpc.ProfileServiceStub(channel)
    finally:
        await channel.close()
        proxy.cut()
        await service.stop(0)


def assert_retryable(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.seconds + retry.retry_delay.nanos > 0
    assert "Traceback" not in (error.details() or "")


async def test_postgres_outage_answers_unavailable_then_recovers(
    proxied: tuple[TcpProxy, profile_pb2_grpc.ProfileServiceStub],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, stub = proxied
    await stub.UpsertItems(P.UpsertItemsRequest(items=[item("a")]), metadata=auth())

    proxy.cut()  # pooled connections reset, new ones refused
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="copyloop.errors"):
        for call in (
            stub.GetItems(P.GetItemsRequest(item_ids=["a"]), metadata=auth()),
            stub.UpsertItems(P.UpsertItemsRequest(items=[item("b")]), metadata=auth()),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert_retryable(err.value)
    records = [r for r in caplog.records if r.name == "copyloop.errors"]
    assert records and all(r.levelno == logging.WARNING and not r.exc_info for r in records)
    assert all(r.getMessage() == "database unavailable" for r in records)

    proxy.restore()
    got = await stub.GetItems(P.GetItemsRequest(item_ids=["a", "b"]), metadata=auth())
    # The write that failed did not half-happen; the one before the outage is there.
    assert [i.item_id for i in got.items] == ["a"] and list(got.missing_item_ids) == ["b"]


async def test_a_held_sqlite_lock_answers_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "profile.db"
    service, channel = await start(f"sqlite:///{path}")
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    # The service waits up to its busy timeout for a lock; make that short for this test.
    service.domain.store.engine.pool.dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA busy_timeout=0")
        holder.execute("BEGIN EXCLUSIVE")
        _set_busy_timeout(service, 100)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.UpsertItems(P.UpsertItemsRequest(items=[item("a")]), metadata=auth())
        assert_retryable(err.value)
        holder.execute("ROLLBACK")
        reply = await stub.UpsertItems(P.UpsertItemsRequest(items=[item("a")]), metadata=auth())
        assert reply.results[0].item_id == "a"
    finally:
        holder.close()
        await channel.close()
        await service.stop(0)


def _set_busy_timeout(service: ProfileService, ms: int) -> None:
    from sqlalchemy import event

    @event.listens_for(service.domain.store.engine, "connect")
    def _short(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA busy_timeout={ms}")
