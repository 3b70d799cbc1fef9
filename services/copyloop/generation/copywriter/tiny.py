"""A tiny copywriter for tests: same pipeline as the demo model, seconds to build.

It exercises every moving part (corpus, tokenizer with chat template, GPT-2 checkpoint,
generation config) so Triton and client tests run against a real HF model directory; it
need not write good copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .train import TrainConfig, TrainResult, train_copywriter

__all__ = ["SMALL_CONFIG", "TINY_CONFIG", "build_small_model", "build_tiny_model"]

TINY_CONFIG = TrainConfig(
    n_items=24,
    n_examples=160,
    vocab_size=700,
    n_positions=512,
    n_embd=32,
    n_layer=2,
    n_head=2,
    max_steps=25,
    batch_size=8,
    learning_rate=3e-3,
    warmup_steps=3,
)


# Small but trained enough (about a minute on one core) that most of its frames pass every
# check: for the tests that must see model-written copy reach a client, which the tiny model
# (random-ish text, always replaced by templates) cannot show.
SMALL_CONFIG = TrainConfig(
    n_items=60,
    n_examples=3000,
    vocab_size=1500,
    n_embd=64,
    n_layer=2,
    n_head=2,
    max_steps=300,
    batch_size=16,
    learning_rate=4e-3,
    warmup_steps=10,
)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: tiny matrices gain nothing from more, and on a shared CPU
    extra OpenMP threads spin against other jobs and make a seconds-long build take minutes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_tiny_model(out_dir: str | Path, *, force: bool = False) -> TrainResult:
    """Build (or reuse) the tiny model in `out_dir`; no progress bar, no samples."""
    with single_thread():
        return train_copywriter(
            out_dir, TINY_CONFIG, force=force, progress=False, n_samples=0, shared_data=None
        )


def build_small_model(out_dir: str | Path, *, force: bool = False) -> TrainResult:
    """Build (or reuse) the small model in `out_dir` (grammar corpus only: deterministic)."""
    with single_thread():
        return train_copywriter(
            out_dir, SMALL_CONFIG, force=force, progress=False, n_samples=0, shared_data=None
        )
