"""The tiny copywriter builds in seconds, loads as a plain HF checkpoint, generates, fine-tunes."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.copywriter.finetune import FinetuneConfig, brief_from_row, finetune
from copyloop.generation.copywriter.tiny import TINY_CONFIG, build_tiny_model, single_thread
from copyloop.generation.copywriter.train import MANIFEST_NAME, generate_copy
from copyloop.generation.prompts import render_prompt

SAMPLING_PATH = (
    Path(__file__).resolve().parents[4] / "deploy/triton/models/copywriter/1/sampling.py"
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one thread is as fast, and does not fight other jobs on a shared CPU."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-copywriter")
    result = build_tiny_model(out)
    assert not result.skipped
    return out


def test_tiny_model_is_a_loadable_hf_checkpoint_that_generates(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    assert model.config.model_type == "gpt2"
    assert (
        model.config.eos_token_id
        == tokenizer.eos_token_id
        == tokenizer.convert_tokens_to_ids("<|end|>")
    )
    brief = build_corpus(generate_catalog(8), 1, seed=3)[0].brief
    prompt_ids = tokenizer(render_prompt(brief, tokenizer).text, add_special_tokens=False)
    output = model.generate(
        torch.tensor([prompt_ids["input_ids"]]),
        max_new_tokens=6,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    assert 1 <= output.shape[1] - len(prompt_ids["input_ids"]) <= 6
    assert isinstance(generate_copy(model, tokenizer, brief, max_new_tokens=6), str)


def test_build_is_cached_by_config_hash_and_deterministic(tiny_dir: Path) -> None:
    manifest = json.loads((tiny_dir / MANIFEST_NAME).read_text())
    assert manifest["config_hash"] == TINY_CONFIG.config_hash()
    assert build_tiny_model(tiny_dir).skipped
    other = tiny_dir.parent / "tiny-stale"
    other.mkdir()
    for path in tiny_dir.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    (other / MANIFEST_NAME).write_text(json.dumps({**manifest, "config_hash": "stale"}))
    for name in ("model.safetensors", "tokenizer.json"):
        (other / name).unlink()
    assert not build_tiny_model(other).skipped  # a different hash retrains...
    first = AutoModelForCausalLM.from_pretrained(str(tiny_dir)).state_dict()
    second = AutoModelForCausalLM.from_pretrained(str(other)).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)  # ...to the same weights
    assert (other / "tokenizer.json").read_text() == (tiny_dir / "tokenizer.json").read_text()


def test_batched_left_padded_sampling_equals_one_by_one(tiny_dir: Path) -> None:
    """Per-row seeds make a request's text independent of what it was batched with."""
    spec = importlib.util.spec_from_file_location("copywriter_sampling_m", SAMPLING_PATH)
    sampling = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sampling
    spec.loader.exec_module(sampling)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir)).eval()
    briefs = [e.brief for e in build_corpus(generate_catalog(8), 3, seed=5)]
    prompts = [render_prompt(b, tokenizer).text for b in briefs]
    params = [
        sampling.SamplingParams(temperature=1.0, seed=10 + i, max_tokens=8 + i) for i in range(3)
    ]

    def run(batch_prompts, batch_params):
        rows = [sampling.RowState.start(p) for p in batch_params]
        encoded = tokenizer(
            batch_prompts, padding=True, return_tensors="pt", add_special_tokens=False
        )
        with torch.no_grad():
            model.generate(
                **encoded,
                do_sample=False,
                max_new_tokens=16,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=[sampling.RowSampler(rows, tokenizer.eos_token_id)],
                stopping_criteria=[sampling.RowsFinished(rows)],
            )
        return [r.token_ids for r in rows]

    batched = run(prompts, params)
    alone = [run([p], [q])[0] for p, q in zip(prompts, params, strict=True)]
    assert batched == alone
    assert all(len(ids) <= q.max_tokens for ids, q in zip(batched, params, strict=True))


def _write_csv(path: Path) -> Path:
    rows = [
        {
            "title": "Galaxy Rocket Set",
            "brand": "Brickwell",
            "category": "Toys > Building Sets",
            "price": "19.99",
            "list_price": "29.99",
            "channel": "push",
            "locale": "en-US",
            "tone": "playful",
            "selling_points": "420 pieces; ages 8+",
            "color": "blue",
            "copy": "Blast off! Galaxy Rocket Set now $19.99.",
            "ctr": "0.05",
        },
        {
            "title": "Cozy Plush Bear",
            "brand": "Playnest",
            "category": "Toys > Plush Toys",
            "price": "12.99",
            "list_price": "",
            "channel": "sms",
            "locale": "en-US",
            "tone": "friendly",
            "selling_points": "machine washable",
            "color": "brown",
            "copy": "Playnest: meet the Cozy Plush Bear. Reply STOP to opt out.",
            "ctr": "0.02",
        },
        {
            "title": "",
            "brand": "",
            "category": "",
            "price": "",
            "list_price": "",
            "channel": "",
            "locale": "",
            "tone": "",
            "selling_points": "",
            "color": "",
            "copy": "",
            "ctr": "",
        },  # an empty row is skipped
    ]
    item_json = json.dumps(
        {
            "title": "Sonique Headphones",
            "category_path": ["Electronics"],
            "price": 99.0,
            "attributes": {"battery": "40 h"},
        }
    )
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "item"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "item": ""})
        writer.writerow(
            {
                **{k: "" for k in rows[0]},
                "locale": "zh-CN",
                "copy": "限时特惠！Sonique 耳机，立即抢购！",
                "ctr": "0.08",
                "item": item_json,
            }
        )
    return path


def test_brief_from_row_reads_columns_and_json() -> None:
    brief = brief_from_row(
        {
            "title": "Mug",
            "price": "$5.00",
            "list_price": "8",
            "category": "Home > Kitchen",
            "selling_points": "a | b",
            "glaze": "matte",
            "copy": "x",
        }
    )
    assert brief.category_path == ("Home", "Kitchen") and brief.list_price == 8.0
    assert brief.selling_points == ("a", "b") and brief.attributes == (("glaze", "matte"),)
    from_json = brief_from_row({"item": json.dumps({"item_title": "Cup", "attributes": {"k": 1}})})
    assert from_json.item_title == "Cup" and from_json.attributes == (("k", "1"),)


# LoRA moves the barely trained tiny model less: its logit range is bounded by the (frozen)
# embeddings, so the LoRA bar is lower; on a real base model both drop much further.
@pytest.mark.parametrize("lora, lr, min_drop", [(False, 3e-3, 0.1), (True, 1e-2, 0.03)])
def test_finetune_lowers_weighted_loss(
    tiny_dir: Path, tmp_path: Path, lora: bool, lr: float, min_drop: float
) -> None:
    csv_path = _write_csv(tmp_path / "copy.csv")
    out = tmp_path / "finetuned"
    result = finetune(
        tiny_dir,
        csv_path,
        out,
        FinetuneConfig(lora=lora, max_steps=12, batch_size=3, learning_rate=lr),
        progress=False,
    )
    assert result.n_examples == 3
    assert result.loss_after < result.loss_before - min_drop
    base_params = sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(str(tiny_dir)).parameters()
    )
    if lora:
        assert 0 < result.trainable_parameters < base_params / 4
    else:
        assert result.trainable_parameters == base_params
    reloaded = AutoModelForCausalLM.from_pretrained(str(out))  # merged: a plain checkpoint
    assert sum(p.numel() for p in reloaded.parameters()) == base_params
    assert (out / "tokenizer.json").is_file()


def test_completion_only_loss_is_the_token_mean_over_completions(tiny_dir: Path) -> None:
    """The cheap training loss (no vocab projection of prompt tokens) is the plain token-level
    cross-entropy over completion tokens, each example's tokens scaled by its weight."""
    from copyloop.generation.copywriter.batching import collate, encode_example
    from copyloop.generation.copywriter.train import completion_only_loss

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir)).eval()
    examples = [
        encode_example(tokenizer, render_prompt(e.brief, tokenizer).text, e.copy, weight=w)
        for e, w in zip(build_corpus(generate_catalog(8), 3, seed=2), (1.0, 2.0, 0.5), strict=True)
    ]
    batch = collate([e for e in examples if e is not None], tokenizer.pad_token_id)
    with torch.no_grad():
        fast = completion_only_loss(model, batch, torch.device("cpu"))
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    total, weight = 0.0, 0.0
    for row, example in enumerate(e for e in examples if e is not None):
        for pos in range(example.n_prompt, len(example.input_ids)):
            logp = torch.log_softmax(logits[row, pos - 1], dim=-1)[example.input_ids[pos]]
            total -= example.weight * float(logp)
            weight += example.weight
    assert float(fast) == pytest.approx(total / weight, rel=1e-4)
