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
- latency per variant (as the service measured it) and the pool's wall time;
- every model output the pipeline judged while the pool was written: the share that passed and
  the share rejected per rule (first reason), "grammar" (sentences a marketer would publish,
  generation/grammar.py) among them; live model lines the grammar gate would refuse (0 expected);
- about ten live lines per locale (model-written first) for a human read.

    python bench/copy_quality.py --model-dir var/models/copywriter-demo --items 40

Train the demo model first (`python -m copyloop.generation.copywriter train`, or `make run`).
`--no-llm` measures the template-only baseline. `--temperature` / `--top-p` replace the service's
default sampling for the run (in this process), to measure a proposed default before it is made.
`--platform var/platform.json` measures the live pool of a running platform instead (e.g. after
`make run`'s walkthrough), reading items from its ProfileService. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from copyloop.common.errors import Violations
from copyloop.common.protoconv import CHANNEL_ENUMS
from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import item_to_proto
from copyloop.generation import domain as generation_domain
from copyloop.generation import messages as generation_messages
from copyloop.generation.frames import distinct_n, frame_of
from copyloop.generation.grammar import frame_of_copy, grammar_problems
from copyloop.generation.llm_client import SamplingParams
from copyloop.generation.main import start_generation_service
from copyloop.generation.messages import generation_request
from copyloop.generation.pipeline import PipelineResult, RawOutput, process_variants
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
CHECKS = ("claim", "sentiment", "compliance", "length", "pii", "grammar")
SAMPLES_PER_LOCALE = 10


def _sampling_override(
    default: Callable[..., SamplingParams], temperature: float | None, top_p: float | None
) -> Callable[..., SamplingParams]:
    """The request parser's sampling with the service defaults replaced (unset fields only
    in a real request; the pool's requests set none)."""

    def parsed(*args: Any, **kwargs: Any) -> SamplingParams:
        params = default(*args, **kwargs)
        return dataclasses.replace(
            params,
            temperature=params.temperature if temperature is None else temperature,
            top_p=params.top_p if top_p is None else top_p,
        )

    return parsed


def _spread(lines: list[str], n: int) -> list[str]:
    step = max(1, len(lines) // n) if lines else 1
    return lines[::step][:n]


def _channel_name(channel: int) -> str:
    names = {int(v): k for k, v in CHANNEL_ENUMS.items()}
    return names.get(int(channel), str(channel))


class Verdicts:
    """Every model output the pipeline judged, with its first rejection rule ('' = passed).
    The service re-judges all of a request's outputs after each regeneration round, so an
    output is keyed by (brief, position, text) and its last verdict counts."""

    def __init__(self) -> None:
        self.by_output: dict[tuple[object, int, str], str] = {}

    def wrap(self, original: Callable[..., PipelineResult]) -> Callable[..., PipelineResult]:
        def judged(
            brief: CopyBrief,
            constraints: object,
            raw_outputs: Sequence[RawOutput],
            *args: Any,
            **kwargs: Any,
        ) -> PipelineResult:
            result = original(brief, constraints, raw_outputs, *args, **kwargs)
            for index, raw in enumerate(raw_outputs):
                self.by_output[(brief, index, raw.text)] = ""
            for rejected in result.rejected:
                if 0 <= rejected.raw_index < len(raw_outputs):
                    key = (brief, rejected.raw_index, raw_outputs[rejected.raw_index].text)
                    self.by_output[key] = rejected.reasons[0].rule if rejected.reasons else "?"
            return result

        return judged

    def summary(self, locale: str | None = None) -> dict[str, object]:
        verdicts = [
            v
            for (brief, _, _), v in self.by_output.items()
            if locale is None or getattr(brief, "locale", None) == locale
        ]
        rules = Counter(v for v in verdicts if v)
        n = max(1, len(verdicts))
        return {
            "outputs_judged": len(verdicts),
            "pass_rate": (len(verdicts) - sum(rules.values())) / n,
            "rejected_share": {rule: count / n for rule, count in rules.most_common()},
            "grammar_rejection_rate": rules["grammar"] / n,
        }


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
    angles_model: Counter[str] = field(default_factory=Counter)  # live model lines per angle
    gate_fails_live_model: int = 0  # live model lines the grammar gate would refuse
    lines: list[str] = field(default_factory=list)  # every live line, tagged by its writer

    def samples(self) -> list[str]:
        """SAMPLES_PER_LOCALE model lines spread over the pool, then 3 template lines."""
        model = [x for x in self.lines if x.startswith("[model")]
        template = [x for x in self.lines if not x.startswith("[model")]
        return _spread(model, SAMPLES_PER_LOCALE) + _spread(template, 3)

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
            "model_share_by_angle": {
                a: round(self.angles_model[a] / n, 3) for a, n in self.angles.items()
            },
            "grammar_fails_live_model": self.gate_fails_live_model,
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
    default_sampling = generation_messages._sampling
    if args.temperature is not None or args.top_p is not None:
        generation_messages._sampling = _sampling_override(
            default_sampling, args.temperature, args.top_p
        )
    verdicts = Verdicts()
    generation_domain.process_variants = verdicts.wrap(process_variants)  # type: ignore[attr-defined]
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
                        frame = frame_of(c.text, brief) if brief else c.text
                        _add(figures, c, review, frame, brief)
            finally:
                await channel.close()
                await service.stop(0)
    finally:
        generation_domain.process_variants = process_variants  # type: ignore[attr-defined]
        generation_messages._sampling = default_sampling
        if triton is not None:
            triton.stop()
    return {
        "overall": {**overall.summary(), **verdicts.summary()},
        **{loc: {**f.summary(), **verdicts.summary(loc)} for loc, f in per_locale.items()},
        "pool_wall_s": wall_s,
        "units": len(catalog) * len(args.channels) * len(args.locales) * len(args.segments),
        "llm": not args.no_llm,
        "sampling_override": {"temperature": args.temperature, "top_p": args.top_p},
        "samples": {loc: f.samples() for loc, f in per_locale.items()},
        "lines": {loc: f.lines for loc, f in per_locale.items()},
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
                _add(figures, c, review, frame_of(c.text, brief) if brief else c.text, brief)
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
        "samples": {loc: f.samples() for loc, f in per_locale.items()},
        "lines": {loc: f.lines for loc, f in per_locale.items()},
    }


def _brief(item: common_pb2.Item, c: G.Creative) -> CopyBrief | None:
    parsed = generation_request(
        G.GenerateRequest(item=item, channel=c.channel, locale=c.locale), Violations()
    )
    return parsed.brief if parsed else None


def _add(
    f: Figures,
    c: G.Creative,
    review: G.ReviewCopyResponse,
    frame: str,
    brief: CopyBrief | None = None,
) -> None:
    f.live += 1
    model = c.variant.source in MODEL_SOURCES
    f.model_written += model
    if model and brief is not None and grammar_problems(frame_of_copy(c.text, brief), c.locale):
        f.gate_fails_live_model += 1
    f.lines.append(f"[{'model' if model else 'template'}/{_channel_name(c.channel)}] {c.text}")
    for check in {x.check for x in review.findings}:
        f.failed[check] += 1
    f.frames[frame] += 1
    f.texts.append(c.text)
    f.sentiment.append(review.sentiment)
    f.coverage.append(review.coverage.score)
    if c.variant.latency_ms:
        f.latency_ms.append(c.variant.latency_ms)
    f.segments.add(c.segment)
    angle = c.angle or c.variant.angle or "-"
    f.angles[angle] += 1
    f.angles_model[angle] += model


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
    overall = result["overall"]
    failed = overall["failed_on_review"]  # type: ignore[index]
    print("failed on re-review per check: " + ", ".join(f"{k} {v}" for k, v in failed.items()))
    refused = overall["grammar_fails_live_model"]  # type: ignore[index]
    print(f"live model lines the grammar gate refuses: {refused}")
    if "outputs_judged" in overall:  # type: ignore[operator]
        for column in columns:
            figures = result[column]
            shares = ", ".join(
                f"{rule} {share:.1%}"
                for rule, share in figures["rejected_share"].items()  # type: ignore[index]
            )
            judged, passed = figures["outputs_judged"], figures["pass_rate"]  # type: ignore[index]
            print(f"model outputs judged ({column}): {judged}, passed {passed:.1%}; rejected: ")
            print(f"  {shares or '-'}")
    print(f"angles: {result['overall']['angles']}")  # type: ignore[index]
    print(f"model-written share per angle: {result['overall']['model_share_by_angle']}")  # type: ignore[index]
    print(f"pool wall time: {result['pool_wall_s']:.0f} s for {result['units']} units")
    samples: dict[str, list[str]] = result.get("samples", {})  # type: ignore[assignment]
    for locale, lines in samples.items():
        print(f"sample live lines, {locale}:")
        for line in lines:
            print(f"  {line}")


def _write_lines(result: dict[str, object], path: Path | None) -> None:
    """Every live line (tagged by its writer) to `path`, kept out of the JSON figures."""
    lines: dict[str, list[str]] = result.pop("lines", {})  # type: ignore[assignment]
    if path is not None:
        path.write_text("".join(f"[{loc}]{line}\n" for loc, rows in lines.items() for line in rows))


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
    parser.add_argument("--temperature", type=float, help="instead of the service's default")
    parser.add_argument("--top-p", type=float, help="instead of the service's default")
    parser.add_argument("--platform", help="var/platform.json of a running platform to measure")
    parser.add_argument("--lines", type=Path, help="write every live line here, one per row")
    args = parser.parse_args()
    if args.platform:
        result = asyncio.run(measure_running(args))
        _write_lines(result, args.lines)
        print_table(result, [k for k in result if k.count("-") == 1 and len(k) == 5])
        print(json.dumps(result, ensure_ascii=False))
        return
    if not args.no_llm and not (args.model_dir / "config.json").exists():
        sys.exit(f"no model at {args.model_dir}: train it first (or pass --no-llm)")
    result = asyncio.run(measure(args))
    _write_lines(result, args.lines)
    print_table(result, args.locales)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
