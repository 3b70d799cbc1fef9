"""Stable feature hashing.

Python's built-in `hash` is salted per process, so hashed feature ids would change between
training and serving; these use blake2b (strings) and a fixed integer mixer (crosses) instead.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

_MASK64 = (1 << 64) - 1
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xBF58476D1CE4E5B9)
_MIX_C = np.uint64(0x94D049BB133111EB)


@lru_cache(maxsize=262_144)
def stable_hash(text: str) -> int:
    """64-bit hash of a string, identical across processes and machines."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def text_key(text: str) -> bytes:
    """Cache key of a copy text: a 16-byte digest, so caches do not hold long strings twice."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def mix_ids(left: NDArray[Any], right: NDArray[Any]) -> NDArray[np.uint64]:
    """Vectorised hash of id pairs (feature crosses) without going back to strings.

    splitmix64-style finaliser over `left * A + right`; uint64 arithmetic wraps by design.
    """
    with np.errstate(over="ignore"):
        x = left.astype(np.uint64) * _MIX_A + right.astype(np.uint64)
        x ^= x >> np.uint64(30)
        x *= _MIX_B
        x ^= x >> np.uint64(27)
        x *= _MIX_C
        x ^= x >> np.uint64(31)
    return x


def bucket(ids: NDArray[Any] | int, buckets: int) -> NDArray[np.int64]:
    """Map 64-bit ids into [1, buckets): 0 stays reserved for padding / missing."""
    arr = np.asarray(ids, dtype=np.uint64)
    return (arr % np.uint64(buckets - 1)).astype(np.int64) + 1
