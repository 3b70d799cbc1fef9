"""The copywriter learns from results: fine-tune on the copy that won, publish a new version.

One cycle (proto-free; the CLI `copyloop copywriter cycle` feeds it from FusionService's
ListCreativePerformance and GenerationService's creatives):

1. winners: served creatives whose lift (observed over expected clicks, per shopper segment and
   copy angle) is above 1 with enough impressions to trust it;
2. each winner's text goes back to the frame the model writes (its item facts replaced by slot
   tokens, `delexicalise`), so the copywriter learns wording, never a price;
3. a stable slice of the winners (by a hash of the creative id, so a winner stays on its side
   from one cycle to the next) is held out; the rest become a training CSV weighted by lift;
4. a LoRA fine-tune (finetune.py, merged into a plain checkpoint) from the newest version of
   this weights lineage, short and seeded;
5. the report: held-out perplexity before/after, and the share of sampled frames that pass the
   generation service's own checks (pipeline.process_variants) on demo items, before/after;
6. publish as version n+1 in the Triton model repository (a directory holding a link to the
   model code and a pointer to the weights under var/), then ask Triton to load it: the loaded
   versions keep serving, and an empty model_version now gets the new one.

A gate keeps a worse copywriter from becoming everyone's default: when the new version's check
pass rate falls more than `pass_rate_tolerance` below its parent's, nothing is published
(`force` publishes anyway, e.g. to A/B it by naming the version).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.pipeline import SOURCE_TEMPLATE_FALLBACK, RawOutput, process_variants
from copyloop.generation.prompts import DEFAULT_TEMPLATE_VERSION, CopyBrief
from copyloop.generation.prompts.brief import angles_for_segment
from copyloop.generation.slots import slot_values
from copyloop.generation.triton_local import (
    COPYWRITER,
    VERSION_FILE,
    lineage_versions,
    load_model,
    model_versions,
    version_info,
    weights_digest,
)

__all__ = [
    "CycleConfig",
    "CycleError",
    "CycleReport",
    "Winner",
    "check_briefs",
    "delexicalise",
    "newest_version",
    "next_version",
    "publish_version",
    "run_cycle",
    "select_winners",
    "split_holdout",
    "training_rows",
    "write_training_csv",
]

CSV_COLUMNS = (
    "copy",
    "weight",
    "item_title",
    "brand",
    "category_path",
    "price",
    "list_price",
    "currency",
    "selling_points",
    "attributes",
    "channel",
    "locale",
    "tone",
    "audience_segment",
    "angle",
)
# Slots whose value may also occur inside another's (a short title inside the title): the
# longer value is replaced first, so "{title}" wins over "{short_title}" for the full name.
_NEVER_DELEXICALISED = frozenset({"category"})  # a category word is ordinary language


class CycleError(RuntimeError):
    """The cycle cannot run: too few winners, no base weights, a version already published."""


@dataclass(frozen=True)
class Winner:
    """One served creative and how it did. `brief` holds the item facts and the channel,
    locale, segment and angle it was written for; `frame` is its slot frame when known (else
    it is recovered from `text` with the facts)."""

    creative_id: str
    text: str
    segment: str
    angle: str
    lift: float
    impressions: int
    brief: CopyBrief | None = None
    frame: str = ""


@dataclass(frozen=True)
class CycleConfig:
    min_impressions: int = 100
    min_lift: float = 1.0  # strictly above: better than predicted
    max_weight: float = 5.0  # a lucky outlier may not dominate the fine-tune
    holdout_fraction: float = 0.2
    lora: bool = True
    max_steps: int = 60
    batch_size: int = 8
    learning_rate: float | None = None  # 2e-3 for LoRA, 3e-4 for full fine-tuning
    seed: int = 0
    n_checks: int = 32  # sampled frames per model (seeded) for the check pass rate
    pass_rate_tolerance: float = 0.05
    force: bool = False  # publish even when the gate says no
    template_version: str = DEFAULT_TEMPLATE_VERSION
    # Torch threads while the cycle runs (restored after). 1 suits the small demo model on a
    # shared CPU, where more threads spin against other work (60 LoRA steps: 31 s on one thread,
    # 400 s on two with the CPU oversubscribed); 0 = torch's default (a GPU, a big CPU).
    torch_threads: int = 1


@dataclass
class CycleReport:
    version: int  # the version published (or that would have been)
    parent_version: int
    published: bool
    reason: str
    weights_dir: str
    n_candidates: int
    n_winners: int
    n_train: int
    n_heldout: int
    perplexity_before: float
    perplexity_after: float
    pass_rate_before: float
    pass_rate_after: float
    n_checks: int
    finetune_loss_before: float
    finetune_loss_after: float
    loaded_versions: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        """A readable summary: the figures before and after, and what was published."""
        rows = [
            ("winners used (train / held out)", f"{self.n_train} / {self.n_heldout}"),
            ("candidates read", str(self.n_candidates)),
            (
                "held-out perplexity",
                f"{self.perplexity_before:.2f} -> {self.perplexity_after:.2f}",
            ),
            (
                f"check pass rate ({self.n_checks} frames)",
                f"{self.pass_rate_before:.0%} -> {self.pass_rate_after:.0%}",
            ),
            (
                "fine-tune weighted loss",
                f"{self.finetune_loss_before:.3f} -> {self.finetune_loss_after:.3f}",
            ),
            ("parent version", str(self.parent_version)),
            (
                "new version",
                f"{self.version} ({'published' if self.published else 'not published'})",
            ),
            ("loaded versions", ", ".join(map(str, self.loaded_versions)) or "-"),
            ("seconds", f"{self.seconds:.1f}"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        return "\n".join([*lines, f"{'reason'.ljust(width)}  {self.reason}"])

    def to_json(self) -> str:
        def finite(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return json.dumps({k: finite(v) for k, v in asdict(self).items()}, sort_keys=True)


# ---- winners -> training data ---------------------------------------------------------------


def delexicalise(text: str, brief: CopyBrief) -> str:
    """The frame of a served text: each of the item's facts (as the slot filler wrote it)
    replaced by its slot token, longest first, so fine-tuning teaches wording, not facts.
    A text that already holds slot tokens is returned as it is."""
    if "{" in text:
        return text
    values = [(name, value) for name, value in slot_values(brief).items() if value]
    frame = text
    for name, value in sorted(values, key=lambda nv: -len(nv[1])):
        if name in _NEVER_DELEXICALISED or len(value) < 2:
            continue
        frame = frame.replace(value, "{" + name + "}")
        # The slot filler capitalises a value that starts a sentence.
        if value[:1].islower():
            frame = frame.replace(value[:1].upper() + value[1:], "{" + name + "}")
    return frame


def select_winners(winners: Iterable[Winner], config: CycleConfig) -> list[Winner]:
    """Winners with lift above `min_lift` and at least `min_impressions`, whose frame is known
    or recoverable, best lift first (ties by creative id: deterministic)."""
    chosen = []
    for w in winners:
        if w.lift <= config.min_lift or w.impressions < config.min_impressions:
            continue
        frame = w.frame or (delexicalise(w.text, w.brief) if w.brief is not None else "")
        if not frame.strip() or w.brief is None:
            continue
        chosen.append(replace(w, frame=frame))
    return sorted(chosen, key=lambda w: (-w.lift, w.creative_id))


def _unit(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_holdout(
    winners: Sequence[Winner], fraction: float, seed: int = 0
) -> tuple[list[Winner], list[Winner]]:
    """(train, held out): a winner is held out when the hash of its creative id falls below
    `fraction`, so it stays on its side whatever else is in the list. With two or more winners
    each side gets at least one."""
    keyed = sorted(winners, key=lambda w: _unit(w.creative_id or w.text, seed))
    held = [w for w in keyed if _unit(w.creative_id or w.text, seed) < fraction]
    train = [w for w in keyed if _unit(w.creative_id or w.text, seed) >= fraction]
    if len(keyed) >= 2 and not held:
        held, train = keyed[:1], keyed[1:]
    elif len(keyed) >= 2 and not train:
        held, train = keyed[:-1], keyed[-1:]
    order = {id(w): n for n, w in enumerate(winners)}
    return sorted(train, key=lambda w: order[id(w)]), sorted(held, key=lambda w: order[id(w)])


def training_rows(winners: Sequence[Winner], config: CycleConfig) -> list[dict[str, Any]]:
    """One CSV row per winner for finetune.py: its frame as the copy, the brief's fields, and
    a weight equal to its lift (capped at `max_weight`; finetune normalises to mean 1)."""
    rows = []
    for w in winners:
        b = w.brief
        assert b is not None  # select_winners keeps only winners with a brief
        rows.append(
            {
                "copy": w.frame,
                "weight": round(min(config.max_weight, w.lift), 6),
                "item_title": b.item_title,
                "brand": b.brand,
                "category_path": " > ".join(b.category_path),
                "price": b.price,
                "list_price": b.list_price if b.list_price else "",
                "currency": b.currency,
                "selling_points": json.dumps(list(b.selling_points), ensure_ascii=False),
                "attributes": json.dumps(dict(b.attributes), ensure_ascii=False),
                "channel": b.channel,
                "locale": b.locale,
                "tone": b.tone,
                "audience_segment": w.segment,
                "angle": w.angle,
            }
        )
    return rows


def write_training_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---- versions in the model repository -------------------------------------------------------


def next_version(repository: str | Path, model: str = COPYWRITER) -> int:
    """One above every version directory in the repository (whatever its lineage: numbers are
    never reused), at least 2."""
    return max([1, *model_versions(repository, model)]) + 1


def newest_version(
    repository: str | Path, root_model_dir: str | Path, model: str = COPYWRITER
) -> tuple[int, Path]:
    """(version, weights) of the newest version of `root_model_dir`'s lineage: the root
    itself (version 1) until a cycle has published one."""
    versions = lineage_versions(repository, root_model_dir, model) or [1]
    newest = versions[-1]
    weights = version_info(repository, newest, model).get("model_dir") or str(root_model_dir)
    return newest, Path(weights)


def _code_version(repository: Path, model: str) -> int:
    """The version directory that holds the model code (model.py), i.e. version 1."""
    for version in model_versions(repository, model):
        if (repository / model / str(version) / "model.py").is_file() and not (
            repository / model / str(version) / VERSION_FILE
        ).exists():
            return version
    raise CycleError(f"{repository / model} has no version with model.py")


def publish_version(
    repository: str | Path,
    version: int,
    weights_dir: str | Path,
    root_model_dir: str | Path,
    parent_version: int,
    extra: dict[str, Any] | None = None,
    model: str = COPYWRITER,
) -> Path:
    """Creates <repository>/<model>/<version>/: a relative link to the model code and the
    pointer to the weights (outside git). Built aside and renamed into place, so Triton never
    sees a half-written version; an existing version is never overwritten."""
    repository = Path(repository)
    target = repository / model / str(version)
    if target.exists():
        raise CycleError(f"version {version} already exists: {target}")
    code = _code_version(repository, model)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=repository / model))
    try:
        (staging / "model.py").symlink_to(Path("..") / str(code) / "model.py")
        pointer = {
            "model_dir": str(Path(weights_dir).resolve()),
            "root": str(Path(root_model_dir).resolve()),
            "root_digest": weights_digest(root_model_dir),
            "parent_version": parent_version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        (staging / VERSION_FILE).write_text(json.dumps(pointer, indent=2, sort_keys=True))
        os.chmod(staging, 0o755)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# ---- evaluation --------------------------------------------------------------------------------


def check_briefs(n: int, seed: int = 7) -> list[CopyBrief]:
    """`n` push briefs on demo catalog items (en-US), spread over segments and their best
    angles: what the check pass rate is measured on, the same for every model."""
    from copyloop.demo.catalog import generate_catalog
    from copyloop.generation.copywriter.corpus import AUDIENCE_SEGMENTS

    items = generate_catalog(max(n, 1), seed=seed)
    briefs = []
    for index in range(n):
        item = items[index % len(items)]
        segment = AUDIENCE_SEGMENTS[index % len(AUDIENCE_SEGMENTS)]
        angle = angles_for_segment(segment)[(index // len(AUDIENCE_SEGMENTS)) % 2]
        briefs.append(
            CopyBrief(
                item_title=item.title,
                brand=item.brand,
                category_path=item.category_path,
                price=item.price,
                list_price=item.list_price if item.is_discounted else None,
                currency=item.currency,
                selling_points=item.selling_points,
                attributes=tuple(sorted(item.attributes.items())),
                channel="push",
                locale="en-US",
                tone="playful",
                audience_segment=segment,
                angle=angle,
            )
        )
    return briefs


def _load(model_dir: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from .tokenizer import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    return model, tokenizer


def evaluate(
    model_dir: str | Path,
    heldout: Sequence[Winner],
    briefs: Sequence[CopyBrief],
    template_version: str = DEFAULT_TEMPLATE_VERSION,
    seed: int = 0,
) -> tuple[float, float]:
    """(held-out perplexity, check pass rate) of one model: the perplexity of the held-out
    winners' frames given their prompts, and the share of greedy frames for `briefs` that pass
    every check the service runs before storing copy (slots, fluency, claims, compliance,
    coverage). Frames are sampled with fixed seeds, the same for every model."""
    from .finetune import completion_perplexity

    model, tokenizer = _load(Path(model_dir))
    pairs = [(w.brief, w.frame) for w in heldout if w.brief is not None]
    perplexity = completion_perplexity(model, tokenizer, pairs, template_version)
    passed = 0
    for index, brief in enumerate(briefs):
        text = sample_copy(model, tokenizer, brief, seed + index, template_version)
        result = process_variants(brief, CopyConstraints(), [RawOutput(text)])
        passed += any(v.source != SOURCE_TEMPLATE_FALLBACK for v in result.variants)
    return perplexity, passed / len(briefs) if briefs else 0.0


def sample_copy(
    model: Any,
    tokenizer: Any,
    brief: CopyBrief,
    seed: int,
    template_version: str = DEFAULT_TEMPLATE_VERSION,
    max_new_tokens: int = 48,
) -> str:
    """One frame sampled as serving samples (temperature 0.8, top-p 0.95, top-k 50), seeded:
    greedy decoding of a small model collapses to its commonest frame ("{title}!") and says
    little about the copy shoppers would see."""
    import torch

    from copyloop.generation.prompts import render_prompt

    prompt = render_prompt(brief, tokenizer, template_version=template_version).text
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(seed)
    output = model.generate(
        **encoded,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=0.8,
        top_p=0.95,
        top_k=50,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return str(
        tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    )


# ---- the cycle ------------------------------------------------------------------------------


def run_cycle(
    winners: Iterable[Winner],
    *,
    repository: str | Path,
    root_model_dir: str | Path,
    weights_root: str | Path,
    config: CycleConfig | None = None,
    triton_url: str = "",
    model: str = COPYWRITER,
    log: Callable[[str], None] | None = None,
) -> CycleReport:
    """One cycle (see the module docstring). `root_model_dir` is version 1's weights (what
    Triton's COPYWRITER_MODEL_DIR names); new weights go to <weights_root>/copywriter-v<n>;
    with `triton_url` (gRPC host:port of a server in explicit model-control mode) the new
    version is loaded there. Raises CycleError when there is nothing to learn from."""
    config = config or CycleConfig()
    started = time.perf_counter()

    def say(message: str) -> None:
        if log is not None:
            log(f"[{time.perf_counter() - started:5.1f}s] {message}")

    import torch

    threads = torch.get_num_threads()
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    try:
        return _run(
            winners, repository, root_model_dir, weights_root, config, triton_url, model, say
        )
    finally:
        torch.set_num_threads(threads)


def _run(
    winners: Iterable[Winner],
    repository: str | Path,
    root_model_dir: str | Path,
    weights_root: str | Path,
    config: CycleConfig,
    triton_url: str,
    model: str,
    say: Callable[[str], None],
) -> CycleReport:
    started = time.perf_counter()
    candidates = list(winners)
    chosen = select_winners(candidates, config)
    if len(chosen) < 2:
        raise CycleError(
            f"{len(chosen)} winner(s) with lift > {config.min_lift} and >= "
            f"{config.min_impressions} impressions among {len(candidates)}: at least 2 needed"
        )
    train, heldout = split_holdout(chosen, config.holdout_fraction, config.seed)
    repository = Path(repository)
    parent, parent_dir = newest_version(repository, root_model_dir, model)
    version = next_version(repository, model)
    weights_dir = Path(weights_root) / f"copywriter-v{version}"
    say(
        f"{len(chosen)} winners of {len(candidates)} ({len(train)} train, {len(heldout)} held "
        f"out); fine-tuning version {parent} ({parent_dir}) into version {version}"
    )
    from .finetune import FinetuneConfig, finetune

    if weights_dir.exists():  # left by an attempt that never published this number
        shutil.rmtree(weights_dir)
    with tempfile.TemporaryDirectory(prefix="copywriter-cycle-") as work:
        csv_path = write_training_csv(training_rows(train, config), Path(work) / "winners.csv")
        tuned = finetune(
            parent_dir,
            csv_path,
            weights_dir,
            FinetuneConfig(
                lora=config.lora,
                max_steps=config.max_steps,
                batch_size=config.batch_size,
                learning_rate=config.learning_rate
                if config.learning_rate is not None
                else (2e-3 if config.lora else 3e-4),
                seed=config.seed,
                template_version=config.template_version,
            ),
            progress=False,
        )
    say(f"fine-tuned: weighted loss {tuned.loss_before:.3f} -> {tuned.loss_after:.3f}")
    briefs = check_briefs(config.n_checks)
    say(f"evaluating version {parent} and version {version}")
    ppl_before, pass_before = evaluate(
        parent_dir, heldout, briefs, config.template_version, config.seed
    )
    ppl_after, pass_after = evaluate(
        weights_dir, heldout, briefs, config.template_version, config.seed
    )
    say(f"evaluated: pass rate {pass_before:.0%} -> {pass_after:.0%}")
    worse = pass_after < pass_before - config.pass_rate_tolerance
    publish = config.force or not worse
    if worse:
        reason = (
            f"check pass rate fell {pass_before:.0%} -> {pass_after:.0%} (tolerance "
            f"{config.pass_rate_tolerance:.0%})" + ("; published anyway (force)" if publish else "")
        )
    else:
        reason = f"check pass rate {pass_before:.0%} -> {pass_after:.0%}: published"
    report = CycleReport(
        version=version,
        parent_version=parent,
        published=publish,
        reason=reason,
        weights_dir=str(weights_dir),
        n_candidates=len(candidates),
        n_winners=len(chosen),
        n_train=len(train),
        n_heldout=len(heldout),
        perplexity_before=ppl_before,
        perplexity_after=ppl_after,
        pass_rate_before=pass_before,
        pass_rate_after=pass_after,
        n_checks=len(briefs),
        finetune_loss_before=tuned.loss_before,
        finetune_loss_after=tuned.loss_after,
    )
    if publish:
        publish_version(
            repository,
            version,
            weights_dir,
            root_model_dir,
            parent,
            {
                "winners": len(chosen),
                "perplexity_before": _finite(ppl_before),
                "perplexity_after": _finite(ppl_after),
                "pass_rate_before": pass_before,
                "pass_rate_after": pass_after,
            },
            model,
        )
        if triton_url:
            say(f"loading version {version} into Triton at {triton_url}")
            report.loaded_versions = load_model(
                triton_url, repository, model, root_model_dir=root_model_dir
            )
            say(f"Triton serves versions {', '.join(map(str, report.loaded_versions))}")
    report.seconds = time.perf_counter() - started
    return report


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
