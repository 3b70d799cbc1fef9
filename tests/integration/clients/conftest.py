"""Fixtures for the SDK and CLI tests: the real platform on free ports (its own event loop in a
background thread, so blocking clients and the CLI can call it from the test thread) and a tiny
real gRPC server that answers with scripted status codes, to prove retries."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

# Until the distribution ships copyloop_client (setup.py package_dir), use the source tree.
if importlib.util.find_spec("copyloop_client") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients" / "python"))

from tests.integration.clients.helpers import (
    API_KEY,
    CLIENT_ENV_VARS,
    FAST_RETRY,
    ScriptedServer,
    ThreadedPlatform,
)

from copyloop.v1 import profile_pb2
from copyloop_client import ClientConfig


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedPlatform]:
    running = ThreadedPlatform(tmp_path_factory.mktemp("platform"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(autouse=True)
def clean_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own COPYLOOP_* settings must not redirect the tests."""
    for name in CLIENT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(platform: ThreadedPlatform) -> ClientConfig:
    return ClientConfig(
        addresses=platform.addresses(), api_key=API_KEY, timeout_s=20.0, retry=FAST_RETRY
    )


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    scripted = ScriptedServer(address=f"127.0.0.1:{port}")
    handler = grpc.method_handlers_generic_handler(
        "copyloop.v1.ProfileService",
        {
            "GetUserProfile": grpc.unary_unary_rpc_method_handler(
                scripted.handle,
                request_deserializer=profile_pb2.GetUserProfileRequest.FromString,
                response_serializer=profile_pb2.GetUserProfileResponse.SerializeToString,
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    server.start()
    try:
        yield scripted
    finally:
        server.stop(0).wait(5)
