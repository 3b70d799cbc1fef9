"""How often the demo copywriter's frames survive slot filling and the pipeline checks.

Samples briefs over the demo catalog x channels x locales x segments (tone as the service
defaults it, angle from the segment's preferred order or none), generates candidates
in-process with the Triton model's own sampler (temperature 0.8, top_p 0.95 and the
service's max_tokens by default, one seed per request), and runs each output alone
through `process_variants` (clean -> fill slots -> compliance -> length -> coverage).
Reports the pass rate, rejections per rule, distinct frames, the share of the three
commonest, per locale and channel, and a readability proxy: the share of outputs that pass
*and* use only the grammar's words (English words, Chinese character pairs, outside slots)
without a slot or phrase repeated. Figures are reported, never asserted.

    .venv/bin/python bench/copy_frames.py --model-dir var/models/copywriter-demo
    .venv/bin/python bench/copy_frames.py --frequency-penalty 0.5   # less repetition
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from copyloop.demo.catalog import DemoItem, generate_catalog
from copyloop.generation.claims import ItemFacts, check_claims
from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.copywriter import phrases
from copyloop.generation.length import effective_max_chars
from copyloop.generation.pipeline import (
    PipelineSettings,
    RawOutput,
    clean_model_output,
    process_variants,
)
from copyloop.generation.prompts import CHANNELS, LOCALES, CopyBrief, render_prompt
from copyloop.generation.prompts.brief import angles_for_segment
from copyloop.generation.slots import SLOT_RE, frame_slots

# The service's defaults (copyloop.generation.messages.DEFAULT_TONES).
DEFAULT_TONES = {
    "ad_copy": "friendly",
    "product_description": "informative",
    "push": "playful",
    "sms": "friendly",
    "email_subject": "friendly",
    "social_post": "playful",
    "promo_banner": "urgent",
}
SEGMENTS = ("", "bargain_hunter", "new_user", "loyal_high_value", "gift_shopper", "trend_seeker")


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’]*")
_HAN_RE = re.compile(r"[\u4e00-\u9fff]+")


def _units(text: str) -> set[str]:
    """English words (lower case) and Chinese character pairs, outside slots."""
    text = SLOT_RE.sub(" ", text)
    units = {w.lower() for w in _WORD_RE.findall(text)}
    for run in _HAN_RE.findall(text):
        units.update(run[i : i + 2] for i in range(len(run) - 1))
        units.update(run if len(run) == 1 else ())
    return units


def _grammar_units() -> set[str]:
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    for name in ("HOOKS", "SHORT_HOOKS", "CURIOSITY", "BODY", "DESCRIPTION_INTRO"):
        walk(getattr(phrases, name))
    for name in ("PRICE_LINE", "CTA", "TAGS", "SMS_OPT_OUT", "MUST_INCLUDE_CHOICES"):
        walk(getattr(phrases, name))
    units: set[str] = set()
    for text in texts:
        units |= _units(text)
    return units


GRAMMAR_UNITS = _grammar_units()


def readable(frame: str) -> bool:
    """Only grammar words, the name at most twice, no slot thrice, no word 3-gram repeated."""
    if _units(frame) - GRAMMAR_UNITS:
        return False
    slots = Counter(frame_slots(frame))
    if any(count > 2 for count in slots.values()) or slots["title"] + slots["short_title"] > 2:
        return False
    words = frame.split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(grams) == len(set(grams))


def max_tokens_for(brief: CopyBrief) -> int:
    """As copyloop.generation.domain.max_tokens_for with no requested limit."""
    limit = effective_max_chars(brief.channel, brief.locale, brief.max_chars)
    per_token = 1.0 if brief.locale == "zh-CN" else 3.0
    return max(16, min(256, int(limit / per_token * 1.3) + 8))


def make_brief(item: DemoItem, channel: str, locale: str, segment: str, angle: str) -> CopyBrief:
    return CopyBrief(
        item_title=item.title,
        brand=item.brand,
        category_path=item.category_path,
        price=item.price,
        list_price=item.list_price if item.list_price > item.price else None,
        currency=item.currency,
        selling_points=item.selling_points,
        attributes=tuple(sorted(item.attributes.items())),
        channel=channel,
        locale=locale,
        tone=DEFAULT_TONES[channel],
        audience_segment=segment,
        angle=angle,
    )


def sample_briefs(n: int, seed: int, angles: str) -> list[CopyBrief]:
    rng = random.Random(seed)
    catalog = generate_catalog()
    pairs = [(c, loc) for c in CHANNELS for loc in LOCALES]
    briefs = []
    for index in range(n):
        channel, locale = pairs[index % len(pairs)]
        segment = rng.choice(SEGMENTS)
        angle = ""
        if angles == "segment":
            angle = angles_for_segment(segment)[rng.randrange(3)]
        briefs.append(make_brief(rng.choice(catalog), channel, locale, segment, angle))
    return briefs


SAMPLING_PATH = (
    Path(__file__).resolve().parents[1] / "deploy/triton/models/copywriter/1/sampling.py"
)


def _triton_sampling() -> ModuleType:
    """The Triton model's own per-row sampler (pure torch), so sampling is the service's."""
    spec = importlib.util.spec_from_file_location("copywriter_triton_sampling", SAMPLING_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@torch.inference_mode()
def generate(
    model_dir: Path,
    briefs: list[CopyBrief],
    candidates: int,
    seed: int,
    batch: int,
    temperature: float = 0.8,
    top_p: float = 0.95,
    frequency_penalty: float = 0.0,
) -> list[list[str]]:
    """`candidates` completions per brief, batched like Triton: one row per request, each
    with its own seed and max_tokens, sampled by the Triton model's RowSampler."""
    sampling = _triton_sampling()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    jobs = [(i, k) for i in range(len(briefs)) for k in range(candidates)]
    jobs.sort(key=lambda job: max_tokens_for(briefs[job[0]]))
    texts: dict[tuple[int, int], str] = {}
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        rows = [
            sampling.RowState.start(
                sampling.SamplingParams(
                    temperature=temperature,
                    top_p=top_p,
                    seed=seed * 100_003 + i * candidates + k,
                    max_tokens=max_tokens_for(briefs[i]),
                    frequency_penalty=frequency_penalty,
                )
            )
            for i, k in chunk
        ]
        prompts = [render_prompt(briefs[i], tokenizer).text for i, _ in chunk]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        model.generate(
            **encoded,
            do_sample=False,
            max_new_tokens=max(r.params.max_tokens for r in rows),
            pad_token_id=tokenizer.pad_token_id,
            logits_processor=[sampling.RowSampler(rows, tokenizer.eos_token_id)],
            stopping_criteria=[sampling.RowsFinished(rows)],
        )
        for job, row in zip(chunk, rows, strict=True):
            texts[job] = str(tokenizer.decode(row.token_ids, skip_special_tokens=True))
    return [[texts[(i, k)] for k in range(candidates)] for i in range(len(briefs))]


@dataclass
class Tally:
    outputs: int = 0
    passed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    slots_with_any: int = 0
    readable: int = 0
    false_claims: int = 0
    claim_examples: list[str] = field(default_factory=list)

    def row(self, name: str) -> dict[str, object]:
        top3 = sum(c for _, c in self.frames.most_common(3))
        n_pass = max(1, self.passed)
        return {
            "group": name,
            "outputs": self.outputs,
            "pass_rate": round(self.passed / max(1, self.outputs), 3),
            "readable_rate": round(self.readable / max(1, self.outputs), 3),
            "false_claims": self.false_claims,
            "rejected": dict(self.reasons.most_common()),
            "distinct_frames": len(self.frames),
            "top3_frame_share": round(top3 / n_pass, 3),
            "slotted_share": round(self.slots_with_any / n_pass, 3),
        }


def evaluate(
    briefs: list[CopyBrief], outputs: list[list[str]], settings: PipelineSettings
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {"all": Tally()}
    examples: list[str] = []
    for brief, texts in zip(briefs, outputs, strict=True):
        for text in texts:
            result = process_variants(brief, CopyConstraints(), [RawOutput(text)], settings)
            for key in ("all", brief.locale, brief.channel):
                tally = tallies.setdefault(key, Tally())
                tally.outputs += 1
                if result.variants:
                    variant = result.variants[0]
                    tally.passed += 1
                    tally.frames[clean_model_output(text)] += 1
                    tally.slots_with_any += bool(variant.slots)
                    tally.readable += readable(variant.frame)
                    findings = check_claims(variant.text, ItemFacts.from_brief(brief), brief.locale)
                    tally.false_claims += bool(findings)
                    if findings and len(tally.claim_examples) < 5:
                        tally.claim_examples.append(f"{variant.text!r}: {findings[0].message}")
                else:
                    tally.reasons.update(v.rule for r in result.rejected for v in r.reasons[:1])
            if len(examples) < 12 and result.variants:
                examples.append(f"[{brief.channel}/{brief.locale}] {result.variants[0].text}")
    for line in examples:
        print("  " + line)
    for line in tallies["all"].claim_examples:
        print("  false claim: " + line)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/copywriter-demo"))
    parser.add_argument("--briefs", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--angles", choices=("segment", "none"), default="segment")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.8, help="the service's default")
    parser.add_argument("--top-p", type=float, default=0.95, help="the service's default")
    parser.add_argument("--frequency-penalty", type=float, default=0.0)
    args = parser.parse_args()

    started = time.perf_counter()
    briefs = sample_briefs(args.briefs, args.seed, args.angles)
    outputs = generate(
        args.model_dir,
        briefs,
        args.candidates,
        args.seed,
        args.batch,
        args.temperature,
        args.top_p,
        args.frequency_penalty,
    )
    seconds = time.perf_counter() - started
    # The checks as GenerationService runs them for this model: the demo copywriter's frames are
    # held to its grammar strictly (generation/main.py).
    strict = phrases.trained_on_this_grammar(args.model_dir)
    tallies = evaluate(briefs, outputs, PipelineSettings(strict_grammar=strict))
    rows = [tallies[k].row(k) for k in ("all", *LOCALES, *CHANNELS) if k in tallies]
    header = (
        f"{'group':<20} {'outputs':>7} {'pass':>6} {'read':>6} {'frames':>6} {'top3':>6} "
        f"{'false':>5}"
    )
    print(f"\n{header}  rejected")
    for row in rows:
        print(
            f"{row['group']:<20} {row['outputs']:>7} {row['pass_rate']:>6.1%} "
            f"{row['readable_rate']:>6.1%} {row['distinct_frames']:>6} "
            f"{row['top3_frame_share']:>6.1%} {row['false_claims']:>5}  {row['rejected']}"
        )
    summary = {
        "model_dir": str(args.model_dir),
        "briefs": args.briefs,
        "candidates": args.candidates,
        "angles": args.angles,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "frequency_penalty": args.frequency_penalty,
        "generate_seconds": round(seconds, 1),
        "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
