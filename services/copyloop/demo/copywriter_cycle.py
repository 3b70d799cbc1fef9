"""One copywriter cycle on the running platform: the copy that won becomes the next copywriter.

FusionService.ListCreativePerformance names the served creatives that beat their predicted
clicks (per shopper segment and copy angle); GenerationService.ListCreatives gives their texts
and ProfileService.GetItems the items' facts; `copyloop.generation.copywriter.cycle` fine-tunes
on them, publishes the result as the next Triton version and loads it. The walkthrough calls
`run_copywriter_cycle`; `copyloop copywriter cycle` reads the same rows with the CLI's stubs
and converts them with `to_winners`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from copyloop.common.protoconv import CHANNEL_NAMES
from copyloop.generation.copywriter.cycle import (
    CycleConfig,
    CycleError,
    CycleReport,
    Winner,
    run_cycle,
)
from copyloop.generation.messages import DEFAULT_TONES, item_brief
from copyloop.generation.triton_local import DEFAULT_MODEL_REPOSITORY
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

__all__ = ["DEMO_CYCLE", "run_copywriter_cycle", "to_winners"]

Metadata = Sequence[tuple[str, str]]
# Short and seeded: about a minute on the 2-core demo machine (LoRA, 60 steps, one torch
# thread, 48 sampled frames per model for the checks).
DEMO_CYCLE = CycleConfig(min_impressions=10, max_steps=60, n_checks=48, torch_threads=1)
_PAGE = 500


def to_winners(
    performances: Iterable[fusion_pb2.CreativePerformance],
    creatives: Mapping[str, generation_pb2.Creative],
    items: Mapping[str, common_pb2.Item],
) -> list[Winner]:
    """One Winner per performance row whose creative and item are known: its text, and a brief
    with the item's facts, the creative's channel and locale, and the segment and angle it was
    served in (what the copywriter is prompted with). Urgency copy is left out: its prompt
    needs a real promotion, which the rows do not carry."""
    winners = []
    for perf in performances:
        creative = creatives.get(perf.creative_id)
        item = items.get(perf.item_id)
        channel = CHANNEL_NAMES.get(creative.channel, "") if creative is not None else ""
        angle = perf.angle or (creative.angle if creative is not None else "")
        if creative is None or item is None or not channel or angle == "urgency":
            continue
        brief = item_brief(
            item,
            channel=channel,
            locale=creative.locale,
            tone=DEFAULT_TONES[channel],
            audience_segment=perf.segment,
            angle=angle,
        )
        winners.append(
            Winner(
                creative_id=perf.creative_id,
                text=creative.text,
                segment=perf.segment,
                angle=angle,
                lift=perf.lift,
                impressions=perf.impressions,
                brief=brief,
            )
        )
    return winners


async def _performances(
    fusion: fusion_pb2_grpc.FusionServiceStub, metadata: Metadata, min_impressions: int, limit: int
) -> list[fusion_pb2.CreativePerformance]:
    found: list[fusion_pb2.CreativePerformance] = []
    token = ""
    while len(found) < limit:
        reply = await fusion.ListCreativePerformance(
            fusion_pb2.ListCreativePerformanceRequest(
                page_size=min(_PAGE, limit - len(found)),
                page_token=token,
                min_impressions=min_impressions,
            ),
            metadata=metadata,
        )
        found.extend(reply.creatives)
        token = reply.next_page_token
        if not token:
            break
    return found


async def _creatives(
    generation: generation_pb2_grpc.GenerationServiceStub, metadata: Metadata, item_ids: set[str]
) -> dict[str, generation_pb2.Creative]:
    out: dict[str, generation_pb2.Creative] = {}
    for item_id in sorted(item_ids):
        token = ""
        while True:
            reply = await generation.ListCreatives(
                generation_pb2.ListCreativesRequest(
                    item_id=item_id, page_size=1000, page_token=token
                ),
                metadata=metadata,
            )
            out.update((c.creative_id, c) for c in reply.creatives)
            token = reply.next_page_token
            if not token:
                break
    return out


async def _items(
    profile: profile_pb2_grpc.ProfileServiceStub, metadata: Metadata, item_ids: set[str]
) -> dict[str, common_pb2.Item]:
    ids = sorted(item_ids)
    out: dict[str, common_pb2.Item] = {}
    for start in range(0, len(ids), 1000):
        reply = await profile.GetItems(
            profile_pb2.GetItemsRequest(item_ids=ids[start : start + 1000]), metadata=metadata
        )
        out.update((item.item_id, item) for item in reply.items)
    return out


async def run_copywriter_cycle(
    fusion: fusion_pb2_grpc.FusionServiceStub,
    generation: generation_pb2_grpc.GenerationServiceStub,
    profile: profile_pb2_grpc.ProfileServiceStub,
    metadata: Metadata,
    *,
    model_dir: str | Path,
    triton_url: str = "",
    repository: str | Path = DEFAULT_MODEL_REPOSITORY,
    weights_root: str | Path = Path("var/models"),
    config: CycleConfig = DEMO_CYCLE,
    limit: int = 5000,
    show: common_pb2.Item | None = None,
    say: Callable[[str], Any] = print,
) -> CycleReport | None:
    """Reads the winners from the platform, runs one cycle (in a worker thread: the event loop
    keeps serving) and prints its table. `model_dir` is version 1's weights (the directory
    Triton's COPYWRITER_MODEL_DIR names), `triton_url` the server to load the new version into
    (gRPC host:port; empty = publish only). With `show`, one push line for that item from the
    new version is printed. None (and a line saying why) when there is too little to learn
    from. About 60-90 s on the demo model on 2 cores (fine-tune ~20 s, checks of both models
    ~20 s, Triton load ~5-20 s)."""
    started = time.perf_counter()
    performances = await _performances(fusion, metadata, config.min_impressions, limit)
    item_ids = {p.item_id for p in performances}
    creatives, items = await asyncio.gather(
        _creatives(generation, metadata, item_ids), _items(profile, metadata, item_ids)
    )
    winners = to_winners(performances, creatives, items)
    say(
        f"Copywriter cycle: {len(performances)} served creatives with >= "
        f"{config.min_impressions} impressions, {len(winners)} with their copy and item facts."
    )
    try:
        report = await asyncio.to_thread(
            run_cycle,
            winners,
            repository=repository,
            root_model_dir=model_dir,
            weights_root=weights_root,
            config=config,
            triton_url=triton_url,
            log=lambda line: say(f"  {line}"),
        )
    except CycleError as exc:
        say(f"  no new copywriter: {exc}")
        return None
    say(report.table())
    if show is not None and report.published and triton_url:
        reply = await generation.Generate(
            generation_pb2.GenerateRequest(
                item=show,
                channel=common_pb2.CHANNEL_PUSH,
                locale="en-US",
                variant_count=1,
                model_version=str(report.version),
            ),
            metadata=metadata,
            timeout=60,
        )
        for variant in reply.variants:
            say(f"  version {report.version} writes: {variant.text!r} ({variant.model_version})")
    say(f"  cycle done in {time.perf_counter() - started:.0f}s")
    return report
