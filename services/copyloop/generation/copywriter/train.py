"""Train the demo copywriter from scratch: corpus -> tokenizer -> small GPT-2 -> saved HF dir.

No weights can be downloaded, so the project trains its own few-million-parameter model
in minutes on a CPU. The output directory is a plain Hugging Face checkpoint (config,
safetensors, tokenizer with chat template, generation config), so the Triton model loads
it exactly like any other causal LM. Training is skipped when the directory already holds
a model built from the same configuration (hash in `copywriter_train.json`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.prompts import DEFAULT_TEMPLATE_VERSION, CopyBrief, render_prompt

from .batching import (
    IGNORE_INDEX,
    Batch,
    EncodedExample,
    collate,
    encode_example,
    length_bucketed_order,
    weighted_lm_loss,
)
from .corpus import CorpusExample, build_corpus
from .phrases import MANIFEST_NAME
from .sources import DEFAULT_SHARED_DATA, SharedText, load_shared_text, log
from .tokenizer import train_tokenizer

__all__ = [
    "DEFAULT_OUT_DIR",
    "MANIFEST_NAME",
    "TrainConfig",
    "TrainResult",
    "generate_copy",
    "run_training_steps",
    "train_copywriter",
]

DEFAULT_OUT_DIR = Path("var/models/copywriter-demo")
# Bump when the corpus grammar or training recipe changes in a way the config does not show.
RECIPE_VERSION = "copywriter-recipe-7-sale-words-need-a-discount"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model; its hash keys the cache."""

    n_items: int = 240
    catalog_seed: int = 7
    n_examples: int = 19200
    corpus_seed: int = 0
    template_version: str = DEFAULT_TEMPLATE_VERSION
    n_products: int = 300  # real product listings from the shared data, when present
    vocab_size: int = 4000
    n_positions: int = 512
    n_embd: int = 160
    n_layer: int = 4
    n_head: int = 4
    max_steps: int = 1200
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    prompt_loss_weight: float = 0.0  # 0: completion only (and the cheaper loss path)
    seed: int = 0

    def config_hash(self, shared: tuple[str, ...] = ()) -> str:
        """Hash of the recipe, the config and which reference files fed the corpus."""
        data = {"recipe": RECIPE_VERSION, **dataclasses.asdict(self)}
        if shared:
            data["shared"] = list(shared)
        payload = json.dumps(data, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    config_hash: str
    skipped: bool
    final_loss: float
    seconds: float
    n_parameters: int


def _cached(out_dir: Path, config_hash: str) -> dict | None:
    manifest = out_dir / MANIFEST_NAME
    if not manifest.is_file() or not (out_dir / "config.json").is_file():
        return None
    data = json.loads(manifest.read_text())
    return data if data.get("config_hash") == config_hash else None


def completion_only_loss(
    model: GPT2LMHeadModel, batch: Batch, device: torch.device
) -> torch.Tensor:
    """Completion loss per token (example-weighted), without projecting prompt tokens.

    Prompts are most of every sequence; skipping their output projection (a third of a small
    model's work per token) makes each step markedly cheaper. Unlike `weighted_lm_loss`, every
    completion token counts the same, so long copy (descriptions, social posts) is learned
    as fast as short copy when training from scratch.
    """
    hidden = model.transformer(
        input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
    ).last_hidden_state
    labels = batch.labels[:, 1:].to(device)
    select = (labels != IGNORE_INDEX) & ~batch.prompt_mask[:, 1:].to(device)
    logits = model.lm_head(hidden[:, :-1][select]).float()
    token_loss = torch.nn.functional.cross_entropy(logits, labels[select], reduction="none")
    token_weights = batch.weights.to(device)[select.nonzero()[:, 0]]
    return (token_loss * token_weights).sum() / token_weights.sum().clamp(min=1e-8)


def run_training_steps(
    model: PreTrainedModel,
    examples: Sequence[EncodedExample],
    *,
    pad_token_id: int,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    prompt_loss_weight: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> list[float]:
    """AdamW with linear warm-up and cosine decay over length-bucketed epochs.

    Returns the step losses. Batch order comes from a seeded generator so a run is
    reproducible on the same machine.
    """
    if not examples:
        raise ValueError("no training examples")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress_frac = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_frac))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    lengths = [len(e.input_ids) for e in examples]
    pending: list[list[int]] = []
    losses: list[float] = []
    model.train()
    bar = tqdm(range(max_steps), desc=desc, disable=not progress, dynamic_ncols=True)
    for _ in bar:
        if not pending:
            pending = length_bucketed_order(lengths, batch_size, generator)
        batch = collate([examples[i] for i in pending.pop()], pad_token_id)
        if prompt_loss_weight == 0 and isinstance(model, GPT2LMHeadModel):
            loss = completion_only_loss(model, batch, device)
        else:
            logits = model(
                input_ids=batch.input_ids.to(device),
                attention_mask=batch.attention_mask.to(device),
            ).logits
            loss = weighted_lm_loss(
                logits,
                batch.labels.to(device),
                batch.weights,
                batch.prompt_mask,
                prompt_loss_weight,
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


@torch.no_grad()
def generate_copy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    brief: CopyBrief,
    max_new_tokens: int = 64,
    template_version: str = DEFAULT_TEMPLATE_VERSION,
) -> str:
    """Greedy copy for one brief, in-process (samples and smoke tests; serving uses Triton)."""
    prompt = render_prompt(brief, tokenizer, template_version=template_version).text
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    context = int(
        getattr(model.config, "n_positions", 0)
        or getattr(model.config, "max_position_embeddings", 0)
        or 1 << 30
    )
    room = context - int(encoded["input_ids"].shape[1])
    if room < 1:
        raise ValueError(f"prompt of {encoded['input_ids'].shape[1]} tokens fills the context")
    output = model.generate(  # type: ignore[operator]
        **encoded,
        max_new_tokens=min(max_new_tokens, room),
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return str(
        tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    )


def _shared_files(shared_data: Path | None, config: TrainConfig) -> tuple[str, ...]:
    """The reference files the corpus would read (they key the cache too)."""
    from .sources import AMAZON_FILE, UPWORTHY_FILE

    if shared_data is None or not Path(shared_data).is_dir():
        return ()
    wanted = [UPWORTHY_FILE] + ([AMAZON_FILE] if config.n_products > 0 else [])
    return tuple(sorted(f for f in wanted if (Path(shared_data) / f).is_file()))


def _tokenizer_texts(corpus: Sequence[CorpusExample], template_version: str) -> list[str]:
    return [
        render_prompt(e.brief, None, template_version=template_version).text + "\n" + e.copy
        for e in corpus
    ]


def _build_model(config: TrainConfig, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    model_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=4 * config.n_embd,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(model_config)


def train_copywriter(
    out_dir: str | Path = DEFAULT_OUT_DIR,
    config: TrainConfig | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    n_samples: int = 2,
    shared_data: Path | None = DEFAULT_SHARED_DATA,
) -> TrainResult:
    """Train (or reuse) the demo copywriter in `out_dir` and return what happened.

    `shared_data` is the reference-data folder (real products and headlines for the
    corpus); None or a missing folder trains on the grammar alone.
    """
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    available = _shared_files(shared_data, config)
    config_hash = config.config_hash(available)
    cached = None if force else _cached(out_dir, config_hash)
    if cached is not None:
        return TrainResult(
            out_dir,
            config_hash,
            True,
            float(cached["final_loss"]),
            0.0,
            int(cached["n_parameters"]),
        )

    started = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    catalog = generate_catalog(config.n_items, config.catalog_seed)
    shared = (
        load_shared_text(shared_data, config.n_products, config.corpus_seed)
        if available
        else SharedText()
    )
    if not shared.used:
        note = "copywriter corpus: no reference data found; using the frame grammar alone"
        if progress:
            print(note)
        log.info(note)
    elif progress:
        print(f"copywriter corpus: frame grammar + {', '.join(shared.used)}")
    corpus = build_corpus(
        [*catalog, *shared.items],
        config.n_examples,
        seed=config.corpus_seed,
        curiosity=shared.curiosity,
    )
    tokenizer = train_tokenizer(
        _tokenizer_texts(corpus, config.template_version),
        vocab_size=config.vocab_size,
        model_max_length=config.n_positions,
    )
    encoded = [
        e
        for e in (
            encode_example(
                tokenizer,
                render_prompt(ex.brief, tokenizer, template_version=config.template_version).text,
                ex.copy,
                max_length=config.n_positions,
            )
            for ex in corpus
        )
        if e is not None
    ]
    model = _build_model(config, tokenizer)
    losses = run_training_steps(
        model,
        encoded,
        pad_token_id=tokenizer.pad_token_id,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        prompt_loss_weight=config.prompt_loss_weight,
        seed=config.seed,
        progress=progress,
        desc="copywriter",
    )
    final_loss = sum(losses[-20:]) / len(losses[-20:])
    n_parameters = sum(p.numel() for p in model.parameters())

    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=96,
        do_sample=False,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest = {
        "config_hash": config_hash,
        "recipe": RECIPE_VERSION,
        "config": dataclasses.asdict(config),
        "final_loss": final_loss,
        "n_parameters": n_parameters,
        "n_examples": len(encoded),
        "shared_data": list(shared.used),
        "train_seconds": time.perf_counter() - started,
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))

    if n_samples and progress:
        held_out = build_corpus(
            generate_catalog(16, seed=config.catalog_seed + 1),
            n_samples,
            seed=config.corpus_seed + 99,
        )
        for example in held_out:
            copy = generate_copy(
                model, tokenizer, example.brief, template_version=config.template_version
            )
            brief = example.brief
            print(f"[{brief.channel}/{brief.locale}/{brief.tone}] {brief.item_title}: {copy}")
    return TrainResult(
        out_dir, config_hash, False, final_loss, time.perf_counter() - started, n_parameters
    )
