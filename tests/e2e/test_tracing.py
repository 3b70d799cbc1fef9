"""One Recommend is one trace spanning fusion, profile, generation and prediction."""

from __future__ import annotations

from pathlib import Path

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.common.tracing import configure_tracing
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog
from copyloop.platform import PlatformConfig, start_platform
from copyloop.v1 import common_pb2, fusion_pb2, fusion_pb2_grpc, profile_pb2_grpc


async def test_recommend_is_one_trace_across_services(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    assert configure_tracing(exporter)
    platform = await start_platform(
        PlatformConfig(var_dir=tmp_path, api_keys=API_KEYS, embedder="hashing")
    )
    channel = grpc.aio.insecure_channel(platform.fusion.address)
    profile_channel = grpc.aio.insecure_channel(platform.profile.address)
    try:
        await load_catalog(
            profile_pb2_grpc.ProfileServiceStub(profile_channel), generate_catalog(12), auth()
        )
        exporter.clear()
        reply = await fusion_pb2_grpc.FusionServiceStub(channel).Recommend(
            fusion_pb2.RecommendRequest(
                user_id="traced-user",
                n=3,
                latency_budget_ms=5000,
                context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US"),
            ),
            metadata=auth(),
        )
        assert reply.recommendations
        trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        spans = exporter.get_finished_spans()
        root = next(
            s
            for s in spans
            if s.name == "/copyloop.v1.FusionService/Recommend" and s.kind == trace.SpanKind.SERVER
        )
        in_trace = {
            s.name
            for s in spans
            if s.context.trace_id == root.context.trace_id and s.kind == trace.SpanKind.SERVER
        }
        assert {
            "/copyloop.v1.ProfileService/GetUserProfile",
            "/copyloop.v1.ProfileService/RecallItems",
            "/copyloop.v1.GenerationService/GetCreatives",
            "/copyloop.v1.PredictionService/Score",
        } <= in_trace
        downstream = [
            s
            for s in spans
            if s.name == "/copyloop.v1.PredictionService/Score" and s.kind == trace.SpanKind.SERVER
        ]
        assert downstream[0].parent is not None  # a child of fusion's client span, not a new root
    finally:
        await channel.close()
        await profile_channel.close()
        await platform.stop(0)
