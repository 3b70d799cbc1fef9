"""Byte-level BPE tokenizer and chat template for the demo copywriter model.

Byte-level BPE never meets an unknown character, so English, Chinese and emoji all
round-trip. The chat template is the one the prompt contract fixes
(`<|system|>`, `<|user|>`, `<|assistant|>` turns, `<|end|>` closing the assistant turn and
serving as EOS), saved with the tokenizer so `AutoTokenizer.from_pretrained(dir)` and
`apply_chat_template` behave the same in training, in Triton and in the prompt builder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from copyloop.generation.slots import SLOT_TOKENS

__all__ = [
    "CHAT_TEMPLATE",
    "END_TOKEN",
    "PAD_TOKEN",
    "ROLE_TOKENS",
    "SLOT_TOKENS",
    "SPECIAL_TOKENS",
    "load_tokenizer",
    "train_tokenizer",
]

PAD_TOKEN = "<|pad|>"
END_TOKEN = "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD_TOKEN, END_TOKEN, *ROLE_TOKENS)

# Renders <|system|>\n...\n<|user|>\n...\n<|assistant|>\n ; an assistant turn ends with <|end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ '<|end|>' }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 6000,
    min_frequency: int = 2,
    model_max_length: int = 512,
    slot_tokens: Iterable[str] = SLOT_TOKENS,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` and wrap it as a transformers fast tokenizer.

    Deterministic for a given text sequence (the `tokenizers` BPE trainer breaks ties
    by token order). No post-processor: nothing is added implicitly, because the chat
    template already writes every special token the model should see.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    # Slot tokens are ordinary (not special) added tokens: one id each, so the model cannot
    # misspell a slot, and `decode(skip_special_tokens=True)` (Triton) keeps them.
    tokenizer.add_tokens(
        [AddedToken(t, special=False, normalized=False, single_word=False) for t in slot_tokens]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def load_tokenizer(model_dir: str | Path, padding_side: str = "right") -> PreTrainedTokenizerFast:
    """Load a saved tokenizer (ours or any HF one) with a pad token guaranteed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return cast(PreTrainedTokenizerFast, tokenizer)
