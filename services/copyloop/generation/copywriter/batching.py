"""Turning (prompt, completion, weight) triples into loss-masked batches, and the weighted loss.

Shared by the from-scratch trainer and the fine-tuner. The prompt and the completion are
tokenised separately and concatenated, which is exactly what serving sees (the prompt is
sent alone and generation continues from it). Completion tokens carry the loss; prompt
tokens only with an explicit (small) weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one training example; `n_prompt` leading ids carry no loss."""

    input_ids: tuple[int, ...]
    n_prompt: int
    weight: float = 1.0


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    completion: str,
    weight: float = 1.0,
    max_length: int | None = None,
) -> EncodedExample | None:
    """Encode prompt + completion + EOS; None when it does not fit `max_length`."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs an EOS token to end completions")
    ids = [*prompt_ids, *completion_ids, tokenizer.eos_token_id]
    if max_length is not None and len(ids) > max_length:
        return None
    return EncodedExample(tuple(ids), len(prompt_ids), float(weight))


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    prompt_mask: torch.Tensor


def collate(examples: Sequence[EncodedExample], pad_token_id: int) -> Batch:
    """Right-pad a batch; `labels` cover every real token, `prompt_mask` marks prompt ones."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    prompt_mask = torch.zeros((len(examples), width), dtype=torch.bool)
    for row, example in enumerate(examples):
        ids = torch.tensor(example.input_ids, dtype=torch.long)
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        labels[row, : len(ids)] = ids
        prompt_mask[row, : example.n_prompt] = True
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    return Batch(input_ids, attention_mask, labels, weights, prompt_mask)


def length_bucketed_order(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, bucket_batches: int = 8
) -> list[list[int]]:
    """One epoch of batches of similar-length examples, in random order.

    Shuffles, sorts within windows of `bucket_batches` batches and shuffles the batches:
    padding (wasted compute on a CPU) drops sharply while batches stay random.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def weighted_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    prompt_mask: torch.Tensor | None = None,
    prompt_weight: float = 0.0,
) -> torch.Tensor:
    """Per-example mean completion loss (+ prompt_weight x mean prompt loss), example-weighted.

    Each example's completion counts once whatever its length, and a weight (e.g. observed
    CTR) scales how much the model should imitate it. A small prompt weight lets a model
    trained from scratch also learn the prompt format (and to copy product data from it).
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shift_labels.shape)
    real = shift_labels != IGNORE_INDEX
    in_prompt = (
        prompt_mask[:, 1:].to(real.device) if prompt_mask is not None else torch.zeros_like(real)
    )
    completion = (real & ~in_prompt).float()
    per_example = (token_loss * completion).sum(dim=1) / completion.sum(dim=1).clamp(min=1.0)
    if prompt_weight > 0:
        prompt = (real & in_prompt).float()
        per_example = per_example + prompt_weight * (
            (token_loss * prompt).sum(dim=1) / prompt.sum(dim=1).clamp(min=1.0)
        )
    weights = weights.to(per_example.device)
    return (per_example * weights).sum() / weights.sum().clamp(min=1e-8)
