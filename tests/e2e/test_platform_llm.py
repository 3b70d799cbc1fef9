"""End to end with all four services AND a real local Triton (the small trained copywriter):
items without pool copy are written by the model within the request and that model-written
copy reaches the client; a stopped Triton degrades to fallbacks."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog
from copyloop.generation.triton_local import LocalTriton
from copyloop.platform import PlatformConfig, start_platform
from copyloop.v1 import common_pb2, fusion_pb2, fusion_pb2_grpc, profile_pb2_grpc

pytestmark = pytest.mark.triton
F = fusion_pb2


async def test_recommend_writes_copy_with_the_llm_and_degrades_without_it(
    tmp_path: Path, copywriter_small_model_dir: Path
) -> None:
    triton = LocalTriton(copywriter_small_model_dir, startup_timeout_s=240).start()
    platform = await start_platform(
        PlatformConfig(
            var_dir=tmp_path,
            api_keys=API_KEYS,
            embedder="hashing",
            triton_url=triton.grpc_url,
            model_dir=str(copywriter_small_model_dir),
            fusion_overrides={"generate_inline_min_ms": 0},
        )
    )
    channel = grpc.aio.insecure_channel(platform.fusion.address)
    profile_channel = grpc.aio.insecure_channel(platform.profile.address)
    fusion = fusion_pb2_grpc.FusionServiceStub(channel)
    try:
        await load_catalog(
            profile_pb2_grpc.ProfileServiceStub(profile_channel), generate_catalog(40), auth()
        )
        request = F.RecommendRequest(
            user_id="llm-user",
            n=2,
            latency_budget_ms=60_000,
            candidate_item_ids=["demo-00001", "demo-00002"],
            context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US"),
        )

        def inferences() -> int:
            return int(triton.model_statistics()["model_stats"][0]["inference_count"])

        before = inferences()
        reply = await fusion.Recommend(request, metadata=auth(), timeout=120)
        assert len(reply.recommendations) == 2 and not reply.degradations
        # The pool was empty, so copy was written in-request through Triton.
        assert inferences() > before
        assert {r.copy.source for r in reply.recommendations} <= {
            F.COPY_SOURCE_GENERATED,
            F.COPY_SOURCE_FALLBACK,
        }
        assert all(r.copy.text and len(r.copy.text) <= 90 for r in reply.recommendations)
        # Model-written copy (not a template) reaches the client: fresh shoppers and items
        # until some does, in Chinese. The suite's small model passes the strict checks rarely
        # (bench/copy_frames.py: about 1% of its zh-CN outputs, none of its English ones), so
        # it takes many items; a template-only path never passes, however many.
        shown = list(reply.recommendations)
        for n in range(18):
            if any(r.copy.source == F.COPY_SOURCE_GENERATED for r in shown):
                break
            again = F.RecommendRequest()
            again.CopyFrom(request)
            again.user_id = f"llm-user-{n}"
            again.context.locale = "zh-CN"
            again.candidate_item_ids[:] = [f"demo-{3 + 2 * n:05d}", f"demo-{4 + 2 * n:05d}"]
            shown += (await fusion.Recommend(again, metadata=auth(), timeout=120)).recommendations
        generated = [r for r in shown if r.copy.source == F.COPY_SOURCE_GENERATED]
        assert generated, [r.copy.text for r in shown]
        assert all(r.copy.angle and "{" not in r.copy.text for r in generated)

        triton.stop()
        degraded = await fusion.Recommend(request, metadata=auth(), timeout=120)
        assert len(degraded.recommendations) == 2
        assert all(
            r.copy.source in (F.COPY_SOURCE_FALLBACK, F.COPY_SOURCE_POOL)
            for r in degraded.recommendations
        )
    finally:
        await channel.close()
        await profile_channel.close()
        await platform.stop(0)
        triton.stop()
