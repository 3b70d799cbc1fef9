"""Copy quality through the real GenerationService and a real Triton serving the demo model.

Pre-generates a live pool over the demo catalog x channels x locales x segments exactly as the
platform does (PregenerateCreatives with auto-approve), then reads it back through the public
RPCs and re-checks every live creative with ReviewCopy. Reports, per locale and overall:

- model-written share: live creatives whose source is MODEL or MODEL_REGENERATED (the rest are
  template fallbacks);
- live creatives failing a check on re-review (claims, sentiment, compliance, length, pii):
  should be 0 for every check, since nothing goes live without passing them;
- the share of live copy in the 3 commonest frames (wording with the facts taken out) and
  distinct-2 (diversity);
- mean sentiment and attribute coverage; segments with their own creatives; angles used;
- latency per variant (as the service measured it) and the pool's wall time.

    python bench/copy_quality.py --model-dir var/models/copywriter-demo --items 40

Train the demo model first (`python -m copyloop.generation.copywriter train`, or `make run`).
`--no-llm` measures the template-only baseline. `--platform var/platform.json` measures the
live pool of a running platform instead (e.g. after `make run`'s walkthrough), reading items from
its ProfileService. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from copyloop.common.errors import Violations
from copyloop.common.protoconv import CHANNEL_ENUMS
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import item_to_proto
from copyloop.generation.frames import distinct_n, frame_of
from copyloop.generation.main import start_generation_service
from copyloop.generation.messages import generation_request
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.triton_local import LocalTriton
from copyloop.v1 import (
    common_pb2,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

G = generation_pb2
API_KEY = "bench-key"
META = (("authorization", f"Bearer {API_KEY}"),)
MODEL_SOURCES = (G.VARIANT_SOURCE_MODEL, G.VARIANT_SOURCE_MODEL_REGENERATED)
CHECKS = ("claim", "sentiment", "compliance", "length", "pii")


@dataclass
class Figures:
    live: int = 0
    model_written: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    texts: list[str] = field(default_factory=list)
    sentiment: list[float] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)
    angles: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, float | int | dict[str, int]]:
        top3 = sum(c for _, c in self.frames.most_common(3))
        return {
            "live": self.live,
            "model_written_share": self.model_written / self.live if self.live else 0.0,
            "failed_on_review": {c: self.failed[c] for c in CHECKS},
            "false_claims": self.failed["claim"],
            "top3_frame_share": top3 / self.live if self.live else 0.0,
            "distinct_frames": len(self.frames),
            "distinct_2": distinct_n(self.texts, 2),
            "mean_sentiment": statistics.fmean(self.sentiment) if self.sentiment else 0.0,
            "mean_coverage": statistics.fmean(self.coverage) if self.coverage else 0.0,
            "p50_latency_ms_per_variant": statistics.median(self.latency_ms)
            if self.latency_ms
            else 0.0,
            "segments_with_creatives": len(self.segments - {""}),
            "angles": dict(self.angles),
        }


async def pregenerate(
    stub: generation_pb2_grpc.GenerationServiceStub,
    items: list[common_pb2.Item],
    args: argparse.Namespace,
) -> float:
    started = time.perf_counter()
    job = (
        await stub.PregenerateCreatives(
            G.PregenerateCreativesRequest(
                items=items,
                channels=[CHANNEL_ENUMS[c] for c in args.channels],
                locales=args.locales,
                segments=args.segments,
                variants_per_item=args.variants,
                auto_approve=True,
            ),
            metadata=META,
        )
    ).job
    while job.state in (G.JOB_STATE_PENDING, G.JOB_STATE_RUNNING):
        await asyncio.sleep(1)
        job = (
            await stub.GetPregenerationJob(
                G.GetPregenerationJobRequest(job_id=job.job_id), metadata=META
            )
        ).job
        print(
            f"\rpool: {job.done_count}/{job.total_count} units, {job.creative_count} creatives",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    return time.perf_counter() - started


async def live_creatives(
    stub: generation_pb2_grpc.GenerationServiceStub, meta: tuple[tuple[str, str], ...] = META
) -> list[G.Creative]:
    found: list[G.Creative] = []
    token = ""
    while True:
        page = await stub.ListCreatives(
            G.ListCreativesRequest(page_size=1000, page_token=token, status=G.CREATIVE_STATUS_LIVE),
            metadata=meta,
        )
        found.extend(page.creatives)
        token = page.next_page_token
        if not token:
            return found


async def measure(args: argparse.Namespace) -> dict[str, object]:
    catalog = [item_to_proto(i) for i in generate_catalog(240, seed=args.seed)][: args.items]
    by_id = {i.item_id: i for i in catalog}
    triton = None if args.no_llm else LocalTriton(args.model_dir).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            service = await start_generation_service(
                GenerationSettings(
                    port=0,
                    database_url=f"sqlite:///{Path(tmp) / 'generation.db'}",
                    api_keys=f"{API_KEY}:bench",
                    triton_url=triton.grpc_url if triton else "",
                    model_dir=str(args.model_dir) if triton else "",
                )
            )
            channel = grpc.aio.insecure_channel(service.address)
            stub = generation_pb2_grpc.GenerationServiceStub(channel)
            try:
                wall_s = await pregenerate(stub, catalog, args)
                creatives = await live_creatives(stub)
                per_locale: dict[str, Figures] = {loc: Figures() for loc in args.locales}
                overall = Figures()
                for c in creatives:
                    item = by_id[c.item_id]
                    review = await stub.ReviewCopy(
                        G.ReviewCopyRequest(
                            item=item, channel=c.channel, locale=c.locale, text=c.text
                        ),
                        metadata=META,
                    )
                    brief = _brief(item, c)
                    for figures in (overall, per_locale[c.locale]):
                        _add(figures, c, review, frame_of(c.text, brief) if brief else c.text)
            finally:
                await channel.close()
                await service.stop(0)
    finally:
        if triton is not None:
            triton.stop()
    return {
        "overall": overall.summary(),
        **{loc: f.summary() for loc, f in per_locale.items()},
        "pool_wall_s": wall_s,
        "units": len(catalog) * len(args.channels) * len(args.locales) * len(args.segments),
        "llm": not args.no_llm,
    }


async def measure_running(args: argparse.Namespace) -> dict[str, object]:
    """The live pool of a running platform, re-reviewed through its own ReviewCopy."""
    state = json.loads(Path(args.platform).read_text())
    meta = (("authorization", f"Bearer {state['api_key']}"),)
    channels = {n: grpc.aio.insecure_channel(a) for n, a in state["addresses"].items()}
    generation = generation_pb2_grpc.GenerationServiceStub(channels["generation"])
    profile = profile_pb2_grpc.ProfileServiceStub(channels["profile"])
    try:
        creatives = await live_creatives(generation, meta)
        ids = sorted({c.item_id for c in creatives})
        items: dict[str, common_pb2.Item] = {}
        for start in range(0, len(ids), 500):
            reply = await profile.GetItems(
                profile_pb2.GetItemsRequest(item_ids=ids[start : start + 500]), metadata=meta
            )
            items.update({i.item_id: i for i in reply.items})
        locales = sorted({c.locale for c in creatives})
        per_locale = {loc: Figures() for loc in locales}
        overall = Figures()
        for c in creatives:
            review = await generation.ReviewCopy(
                G.ReviewCopyRequest(
                    item=items[c.item_id], channel=c.channel, locale=c.locale, text=c.text
                ),
                metadata=meta,
            )
            brief = _brief(items[c.item_id], c)
            for figures in (overall, per_locale[c.locale]):
                _add(figures, c, review, frame_of(c.text, brief) if brief else c.text)
    finally:
        for channel in channels.values():
            await channel.close()
    return {
        "overall": overall.summary(),
        **{loc: f.summary() for loc, f in per_locale.items()},
        "pool_wall_s": 0.0,
        "units": 0,
        "llm": True,
        "platform": args.platform,
    }


def _brief(item: common_pb2.Item, c: G.Creative) -> CopyBrief | None:
    parsed = generation_request(
        G.GenerateRequest(item=item, channel=c.channel, locale=c.locale), Violations()
    )
    return parsed.brief if parsed else None


def _add(f: Figures, c: G.Creative, review: G.ReviewCopyResponse, frame: str) -> None:
    f.live += 1
    f.model_written += c.variant.source in MODEL_SOURCES
    for check in {x.check for x in review.findings}:
        f.failed[check] += 1
    f.frames[frame] += 1
    f.texts.append(c.text)
    f.sentiment.append(review.sentiment)
    f.coverage.append(review.coverage.score)
    if c.variant.latency_ms:
        f.latency_ms.append(c.variant.latency_ms)
    f.segments.add(c.segment)
    f.angles[c.angle or c.variant.angle or "-"] += 1


def print_table(result: dict[str, object], locales: list[str]) -> None:
    rows = [
        ("live creatives", "live", "{:d}"),
        ("model-written share", "model_written_share", "{:.1%}"),
        ("false claims (live)", "false_claims", "{:d}"),
        ("top-3 frame share", "top3_frame_share", "{:.1%}"),
        ("distinct frames", "distinct_frames", "{:d}"),
        ("distinct-2", "distinct_2", "{:.3f}"),
        ("mean sentiment", "mean_sentiment", "{:+.3f}"),
        ("mean coverage", "mean_coverage", "{:.3f}"),
        ("p50 ms / variant", "p50_latency_ms_per_variant", "{:.0f}"),
        ("segments w/ creatives", "segments_with_creatives", "{:d}"),
    ]
    columns = ["overall", *locales]
    print(f"{'figure':<24}" + "".join(f"{c:>12}" for c in columns))
    for label, key, fmt in rows:
        cells = [fmt.format(result[c][key]) for c in columns]  # type: ignore[index]
        print(f"{label:<24}" + "".join(f"{x:>12}" for x in cells))
    failed = result["overall"]["failed_on_review"]  # type: ignore[index]
    print("failed on re-review per check: " + ", ".join(f"{k} {v}" for k, v in failed.items()))
    print(f"angles: {result['overall']['angles']}")  # type: ignore[index]
    print(f"pool wall time: {result['pool_wall_s']:.0f} s for {result['units']} units")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/copywriter-demo"))
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--channels", nargs="+", default=["push", "sms", "email_subject"])
    parser.add_argument("--locales", nargs="+", default=["en-US", "zh-CN"])
    parser.add_argument(
        "--segments",
        nargs="+",
        default=["bargain_hunter", "loyal_high_value", "premium_shopper", "new_user"],
    )
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-llm", action="store_true", help="template copy only (baseline)")
    parser.add_argument("--platform", help="var/platform.json of a running platform to measure")
    args = parser.parse_args()
    if args.platform:
        result = asyncio.run(measure_running(args))
        print_table(result, [k for k in result if k.count("-") == 1 and len(k) == 5])
        print(json.dumps(result))
        return
    if not args.no_llm and not (args.model_dir / "config.json").exists():
        sys.exit(f"no model at {args.model_dir}: train it first (or pass --no-llm)")
    result = asyncio.run(measure(args))
    print_table(result, args.locales)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
