"""Drain on SIGTERM, as deployed: PredictionService as its own process, a burst of 16 big Score
calls, SIGTERM while the server works on them. Every call the clients sent finishes OK within
the grace period and the process exits 0; none is cancelled unstarted (before the fix, 13 of 16
were CANCELLED within milliseconds: gRPC cancels calls still queued in the transport when the
server stops, and a busy process takes queued calls in slowly)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.v1 import common_pb2, prediction_pb2, prediction_pb2_grpc

P = prediction_pb2
CALLS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_flight(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith("copyloop_grpc_in_flight_requests{")
    )


def big_score_request(candidates: int) -> P.ScoreRequest:
    return P.ScoreRequest(
        user_id="u1",
        context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US"),
        candidates=[
            P.ScoreCandidate(
                item=common_pb2.Item(
                    item_id=f"i{k}", title=f"Item {k}", price=10.0 + k % 50, category_path=["Toys"]
                ),
                creative_id=f"c{k}",
                copy_text=f"Item {k}: a good pick for you",
            )
            for k in range(candidates)
        ],
        explanation_count=3,
    )


@pytest.fixture
def prediction_process(tmp_path: Path):  # type: ignore[no-untyped-def]
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "COPYLOOP_API_KEYS": API_KEYS,
        "COPYLOOP_LOG_LEVEL": "WARNING",
        "COPYLOOP_PREDICTION_PORT": str(port),
        "COPYLOOP_PREDICTION_METRICS_PORT": str(metrics_port),
        "COPYLOOP_PREDICTION_DATABASE_URL": f"sqlite:///{tmp_path / 'prediction.db'}",
        "COPYLOOP_PREDICTION_MODEL_ROOT": str(tmp_path / "models"),
        "COPYLOOP_PREDICTION_EMBEDDER": "hashing",
        "COPYLOOP_PREDICTION_SHUTDOWN_GRACE_S": "20",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "copyloop.prediction.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "listening" in line, line
        yield proc, f"127.0.0.1:{port}", metrics_port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_sigterm_finishes_every_call_already_sent(prediction_process) -> None:  # type: ignore[no-untyped-def]
    proc, address, metrics_port = prediction_process
    request = big_score_request(1000)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = prediction_pb2_grpc.PredictionServiceStub(channel)
        await stub.Score(request, metadata=auth())  # connected and warm
        calls = [
            asyncio.ensure_future(stub.Score(request, metadata=auth(), timeout=120))
            for _ in range(CALLS)
        ]
        # Signal once the server is working on the burst.
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(in_flight, metrics_port) < 1:
            assert time.monotonic() < deadline, "the burst never reached the server"
            await asyncio.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [r.code().name for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert failed == [], f"{len(failed)} of {CALLS} calls failed on SIGTERM: {failed}"
    assert all(len(r.scores) == 1000 for r in results)  # type: ignore[union-attr]
    assert await asyncio.to_thread(proc.wait, 60) == 0
