"""Fine-tune any local Hugging Face causal LM on observed copy, weighted by CTR.

Input is a CSV with one row per piece of copy: the item and brief fields as columns (or as a
JSON object in an `item` column), the `copy`, and optionally its `ctr` (or `clicks` and
`impressions`). The CTR becomes a per-example loss weight (normalised to mean 1), so copy
that performed well is imitated more. Prompts are rendered with the same prompt builder as
serving, using the base model's own chat template. Full fine-tuning or LoRA (peft); LoRA
adapters are merged before saving, so the output is again a plain HF checkpoint that the
Triton model loads unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from copyloop.generation.prompts import CopyBrief, render_prompt

from .batching import IGNORE_INDEX, EncodedExample, collate, encode_example, weighted_lm_loss
from .tokenizer import load_tokenizer
from .train import run_training_steps

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "brief_from_row",
    "completion_perplexity",
    "finetune",
    "load_examples",
]

_COPY_COLUMNS = ("copy", "text", "headline")
_TITLE_COLUMNS = ("item_title", "title", "product", "product_name")
_BRIEF_COLUMNS = {
    "item_title",
    "title",
    "product",
    "product_name",
    "brand",
    "category",
    "category_path",
    "price",
    "list_price",
    "currency",
    "selling_points",
    "channel",
    "locale",
    "tone",
    "audience_segment",
    "audience_summary",
    "max_chars",
    "must_include",
    "angle",
    "attributes",
    "item",
    "copy",
    "text",
    "headline",
    "ctr",
    "clicks",
    "impressions",
    "weight",
}
_MAX_WEIGHT = 20.0


@dataclass(frozen=True)
class FinetuneConfig:
    lora: bool = False
    max_steps: int = 200
    batch_size: int = 8
    learning_rate: float = 3e-4
    lora_r: int = 8
    lora_alpha: int = 16
    seed: int = 0
    template_version: str = "v1"


@dataclass(frozen=True)
class FinetuneResult:
    out_dir: Path
    n_examples: int
    lora: bool
    trainable_parameters: int
    loss_before: float
    loss_after: float
    seconds: float


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and math.isnan(value))
        and str(value).strip() != ""
    )


def _split_list(value: Any) -> tuple[str, ...]:
    if not _present(value):
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("["):
        try:
            return tuple(str(v).strip() for v in json.loads(text) if str(v).strip())
        except ValueError:
            pass
    separator = " | " if " | " in text else "|" if "|" in text else ";"
    return tuple(part.strip() for part in text.split(separator) if part.strip())


def _float(value: Any, default: float | None) -> float | None:
    if not _present(value):
        return default
    try:
        return float(str(value).replace("$", "").replace(",", "").strip())
    except ValueError:
        return default


def brief_from_row(row: dict[str, Any]) -> CopyBrief:
    """A CopyBrief from one CSV row (flat columns, an `item` JSON column, or both)."""
    fields = dict(row)
    if _present(fields.get("item")):
        item = fields["item"]
        fields = {
            **(json.loads(item) if isinstance(item, str) else dict(item)),
            **{k: v for k, v in fields.items() if k != "item" and _present(v)},
        }
    title = next((str(fields[c]).strip() for c in _TITLE_COLUMNS if _present(fields.get(c))), "")
    if not title:
        raise ValueError("row has no item title (item_title/title/product column)")
    category_raw = fields.get("category_path", fields.get("category"))
    if isinstance(category_raw, (list, tuple)):
        category = tuple(str(c) for c in category_raw)
    elif _present(category_raw):
        text = str(category_raw)
        separator = " > " if " > " in text else " | " if " | " in text else "/"
        category = tuple(p.strip() for p in text.split(separator) if p.strip())
    else:
        category = ()
    attributes: dict[str, str] = {}
    raw_attributes = fields.get("attributes")
    if _present(raw_attributes):
        parsed = json.loads(raw_attributes) if isinstance(raw_attributes, str) else raw_attributes
        attributes.update({str(k): str(v) for k, v in dict(parsed or {}).items()})
    for key, value in fields.items():  # any other column is an item attribute
        if key not in _BRIEF_COLUMNS and _present(value):
            attributes[str(key)] = str(value)
    price = _float(fields.get("price"), 0.0) or 0.0
    list_price = _float(fields.get("list_price"), None)
    return CopyBrief(
        item_title=title,
        brand=str(fields.get("brand") or "").strip() if _present(fields.get("brand")) else "",
        category_path=category,
        price=price,
        list_price=list_price if list_price is not None and list_price > price else None,
        currency=str(fields.get("currency")) if _present(fields.get("currency")) else "USD",
        selling_points=_split_list(fields.get("selling_points")),
        attributes=tuple(sorted(attributes.items())),
        channel=str(fields.get("channel")) if _present(fields.get("channel")) else "ad_copy",
        locale=str(fields.get("locale")) if _present(fields.get("locale")) else "en-US",
        tone=str(fields.get("tone")) if _present(fields.get("tone")) else "friendly",
        audience_segment=str(fields.get("audience_segment") or "")
        if _present(fields.get("audience_segment"))
        else "",
        audience_summary=str(fields.get("audience_summary") or "")
        if _present(fields.get("audience_summary"))
        else "",
        max_chars=int(_float(fields.get("max_chars"), 0) or 0),
        must_include=_split_list(fields.get("must_include")),
        # The marketing angle the copy was written in: the prompt names it, as in serving.
        angle=str(fields.get("angle")).strip() if _present(fields.get("angle")) else "",
    )


def _row_weight(row: dict[str, Any]) -> float | None:
    if _present(row.get("weight")):
        return float(row["weight"])
    if _present(row.get("ctr")):
        return float(row["ctr"])
    if _present(row.get("clicks")) and _present(row.get("impressions")):
        impressions = float(row["impressions"])
        return float(row["clicks"]) / impressions if impressions > 0 else None
    return None


def load_examples(csv_path: str | Path) -> list[tuple[CopyBrief, str, float]]:
    """(brief, copy, weight) per usable row; weights are CTRs normalised to mean 1."""
    frame = pd.read_csv(csv_path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    copy_column = next((c for c in _COPY_COLUMNS if c in frame.columns), None)
    if copy_column is None:
        raise ValueError(f"{csv_path}: needs a copy column (one of {_COPY_COLUMNS})")
    rows: list[tuple[CopyBrief, str, float | None]] = []
    for record in frame.to_dict(orient="records"):
        copy = record.get(copy_column)
        if not _present(copy):
            continue
        rows.append((brief_from_row(record), str(copy).strip(), _row_weight(record)))
    if not rows:
        raise ValueError(f"{csv_path}: no rows with copy")
    known = [w for _, _, w in rows if w is not None and w > 0]
    mean = sum(known) / len(known) if known else 1.0
    return [
        (brief, copy, min(_MAX_WEIGHT, max(0.0, w / mean)) if w is not None else 1.0)
        for brief, copy, w in rows
    ]


@torch.no_grad()
def _mean_loss(
    model: PreTrainedModel, examples: list[EncodedExample], pad_id: int, batch_size: int
) -> float:
    model.eval()
    device = next(model.parameters()).device
    total, weight_sum = 0.0, 0.0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = collate(chunk, pad_id)
        logits = model(
            input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
        ).logits
        loss = weighted_lm_loss(logits, batch.labels.to(device), batch.weights, batch.prompt_mask)
        total += float(loss) * float(batch.weights.sum())
        weight_sum += float(batch.weights.sum())
    return total / max(weight_sum, 1e-8)


@torch.no_grad()
def completion_perplexity(
    model: PreTrainedModel,
    tokenizer: Any,
    pairs: Sequence[tuple[CopyBrief, str]],
    template_version: str = "v1",
) -> float:
    """Token-level perplexity of each copy given its serving prompt (the prompt carries no
    loss): how likely the model finds copy like it, e.g. held-out winners before and after a
    fine-tune. inf when no pair fits the context."""
    model.eval()
    device = next(model.parameters()).device
    context = int(
        getattr(model.config, "max_position_embeddings", 0)
        or getattr(model.config, "n_positions", 0)
        or 2048
    )
    total, tokens = 0.0, 0
    for brief, copy in pairs:
        prompt = render_prompt(brief, tokenizer, template_version=template_version).text
        example = encode_example(tokenizer, prompt, copy, 1.0, max_length=context)
        if example is None:
            continue
        batch = collate([example], int(tokenizer.pad_token_id))
        logits = model(input_ids=batch.input_ids.to(device)).logits[:, :-1, :].float()
        labels = batch.labels[:, 1:].to(device).clone()
        labels[batch.prompt_mask[:, 1:].to(device)] = IGNORE_INDEX
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        total += float(loss)
        tokens += int((labels != IGNORE_INDEX).sum())
    return math.exp(total / tokens) if tokens else math.inf


def _with_lora(model: PreTrainedModel, config: FinetuneConfig) -> PreTrainedModel:
    """LoRA on every linear layer (attention and MLP; adapting attention alone barely moves a
    small model), the recipe QLoRA found to match full fine-tuning best."""
    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
        fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2 uses transposed Conv1D
    )
    return get_peft_model(model, lora_config)  # type: ignore[return-value]


def finetune(
    base_dir: str | Path,
    csv_path: str | Path,
    out_dir: str | Path,
    config: FinetuneConfig | None = None,
    *,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tune the model in `base_dir` on the CSV and save a merged checkpoint to `out_dir`."""
    config = config or FinetuneConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(base_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loaded = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model: PreTrainedModel = loaded.to(device)  # type: ignore[arg-type]
    context = int(
        getattr(model.config, "max_position_embeddings", 0)
        or getattr(model.config, "n_positions", 0)
        or 2048
    )
    encoded = [
        e
        for e in (
            encode_example(
                tokenizer,
                render_prompt(brief, tokenizer, template_version=config.template_version).text,
                copy,
                weight,
                max_length=context,
            )
            for brief, copy, weight in load_examples(csv_path)
        )
        if e is not None
    ]
    if not encoded:
        raise ValueError("no example fits the model's context")
    pad_id = int(tokenizer.pad_token_id)
    loss_before = _mean_loss(model, encoded, pad_id, config.batch_size)
    if config.lora:
        model = _with_lora(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    run_training_steps(
        model,
        encoded,
        pad_token_id=pad_id,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=min(10, config.max_steps // 10),
        seed=config.seed,
        progress=progress,
        desc="finetune-lora" if config.lora else "finetune",
    )
    loss_after = _mean_loss(model, encoded, pad_id, config.batch_size)
    if config.lora:
        model = model.merge_and_unload()  # type: ignore[operator]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    result = FinetuneResult(
        out_dir,
        len(encoded),
        config.lora,
        trainable,
        loss_before,
        loss_after,
        time.perf_counter() - started,
    )
    (out_dir / "copywriter_finetune.json").write_text(
        json.dumps(
            {
                "base": str(base_dir),
                "csv": str(csv_path),
                "lora": config.lora,
                "n_examples": len(encoded),
                "trainable_parameters": trainable,
                "loss_before": loss_before,
                "loss_after": loss_after,
                "max_steps": config.max_steps,
                "learning_rate": config.learning_rate,
            },
            indent=2,
        )
    )
    return result
