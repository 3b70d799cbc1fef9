"""Demo tokenizer: byte-level BPE round-trips, special tokens and the chat template."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from copyloop.generation.copywriter.tokenizer import CHAT_TEMPLATE, END_TOKEN, train_tokenizer
from copyloop.generation.prompts import render_prompt

TEXTS = [
    "Save 20% on the Galaxy Explorer Rocket Set! Free shipping.",
    "限时8折！Brickwell 积木套装，立即抢购。回T退订",
    "Cozy plush bear, machine washable 🎁 #Playnest",
] * 30


@pytest.fixture(scope="module")
def saved_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(TEXTS, vocab_size=400).save_pretrained(out)
    return out


@pytest.mark.parametrize(
    "text",
    [
        "Ends tonight: 40% off the Trail Yoga Mat.",
        "手慢无！Sonique 降噪耳机直降23%，到手价99.00元。",
        "Unseen words: Zyxquv 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 日本語のテキスト 😀",
    ],
)
def test_round_trips_english_chinese_and_unseen_text(saved_tokenizer_dir: Path, text: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_bpe_learned_merges_for_both_languages(saved_tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    for text in ("Galaxy Explorer Rocket Set", "积木套装，立即抢购"):
        assert len(tokenizer.encode(text, add_special_tokens=False)) < len(text.encode()) / 2


def test_special_tokens_are_single_ids_and_end_is_eos(saved_tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    assert tokenizer.eos_token == END_TOKEN and tokenizer.pad_token == "<|pad|>"
    for token in ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    assert tokenizer.encode("hi", add_special_tokens=True) == tokenizer.encode(
        "hi", add_special_tokens=False
    )  # nothing is added implicitly


def test_slot_tokens_are_single_ordinary_tokens(saved_tokenizer_dir: Path) -> None:
    """One id per slot (the model cannot misspell one), kept by skip_special_tokens decoding."""
    from copyloop.generation.slots import SLOT_TOKENS

    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    for token in SLOT_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    for frame in ("Save {discount_pct} on {title}!", "【{brand}】省{saving}入手{short_title}。"):
        ids = tokenizer.encode(frame, add_special_tokens=False)
        assert tokenizer.decode(ids, skip_special_tokens=True) == frame


def test_chat_template_renders_contract_format(saved_tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert (
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        == "<|system|>\nS\n<|user|>\nU\n<|assistant|>\n"
    )
    full = [*messages, {"role": "assistant", "content": "A"}]
    assert (
        tokenizer.apply_chat_template(full, tokenize=False)
        == "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA<|end|>\n"
    )


def test_prompt_builder_uses_the_chat_template(saved_tokenizer_dir: Path) -> None:
    from copyloop.demo.catalog import generate_catalog
    from copyloop.generation.copywriter.corpus import build_corpus

    tokenizer = AutoTokenizer.from_pretrained(str(saved_tokenizer_dir))
    brief = build_corpus(generate_catalog(8), 1)[0].brief
    text = render_prompt(brief, tokenizer).text
    assert text.startswith("<|system|>\n") and text.endswith("\n<|assistant|>\n")
    assert "\n<|user|>\ntask: " in text
