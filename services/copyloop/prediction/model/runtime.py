"""Torch thread settings.

The model is tiny, so intra-op parallelism buys little, while on a shared 2-core machine two
torch threads contending with other processes were measured 10x slower than one. Training
and scoring therefore run with an explicit thread count, restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` intra-op threads (None: leave the current setting)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
