"""A read cache for what the hot path reads on every call (Recommend's items, pools, bandit
statistics, profiles), shared by the services' domains and stores.

- Entries expire together, at the end of each `ttl_s` epoch of the monotonic clock: a call that
  reads 200 keys then finds them all, instead of a few expired ones (and a query) on almost
  every call. Another replica's writes show after at most `ttl_s`.
- This process's writes drop what they change (`drop`, `clear`), so a replica reads its own
  writes at once. A read that raced such a write is not kept: `put` takes the `generation()`
  seen before the database was read and keeps the value only if nothing was dropped since.
- Bounded: past `max_entries` it starts afresh, which costs reads, never a wrong answer.

Thread-safe for the stores' worker threads: each dict operation is atomic under the GIL, and
the generation check errs towards not keeping a value."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadCache(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int = 200_000) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0 (leave the cache out to turn it off)")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._generation = 0

    def _epoch(self) -> float:
        return time.monotonic() // self.ttl_s

    def get(self, key: Hashable) -> tuple[bool, V | None]:
        """(True, value) when `key` was kept in this epoch, else (False, None)."""
        hit = self._entries.get(key)
        if hit is None or hit[0] != self._epoch():
            return False, None
        return True, hit[1]

    def generation(self) -> int:
        """Take this before reading the database; hand it to `put`."""
        return self._generation

    def put(self, key: Hashable, value: V, generation: int) -> bool:
        """Keeps `value` unless a write dropped anything since `generation` was taken."""
        if generation != self._generation:
            return False
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (self._epoch(), value)
        return True

    def drop(self, *keys: Hashable) -> None:
        """A write changed these keys: forget them, and any read in flight."""
        self._generation += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """A write changed what cannot be named key by key: forget everything."""
        self._generation += 1
        self._entries.clear()
