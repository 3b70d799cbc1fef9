"""LRU cache of prompt KV states, so a prefix many prompts share is prefilled once.

Copy prompts are rendered from a few templates (one per template, locale, channel and tone):
the system part is the same for every request of that kind and only the brief differs.
Prefilling that part once and copying its keys/values into every row that starts with it
leaves only each row's own suffix to prefill.

The cache does not know about templates; like vLLM's automatic prefix caching it works on
whole blocks of token ids. After a prompt is prefilled, its keys/values are kept (one entry)
and indexed under every block-aligned prefix of the prompt (`block` tokens a block, from
`min_tokens` on). A lookup returns the longest indexed prefix of a new prompt, shorter than
the prompt itself (its last token is always prefilled, for the logits of the first generated
token), and the entry whose first `length` positions are those tokens. So the second prompt
of a template already starts from the first one's KV. Entries are evicted least recently
used first once the cached tokens exceed `max_tokens`.

Pure Python; the KV payload is opaque here (the scheduler stores per-layer tensors).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class PrefixEntry:
    """The KV of one prefilled prompt (its first `len(ids)` tokens)."""

    ids: tuple[int, ...]
    kv: Any
    hits: int = 0

    @property
    def length(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PrefixHit:
    """A usable prefix: the first `length` positions of `entry.kv` are the prompt's."""

    entry: PrefixEntry
    length: int


@dataclass
class PrefixCacheStats:
    lookups: int = 0
    hits: int = 0
    tokens_reused: int = 0
    entries: int = 0
    evictions: int = 0


@dataclass
class PrefixCache:
    """See the module docstring. Not thread-safe: only the scheduler thread uses it."""

    max_tokens: int = 16384
    block: int = 16
    min_tokens: int = 32
    stats: PrefixCacheStats = field(default_factory=PrefixCacheStats)

    def __post_init__(self) -> None:
        if self.block < 1 or self.min_tokens < 1:
            raise ValueError("block and min_tokens must be positive")
        self._entries: OrderedDict[int, PrefixEntry] = OrderedDict()  # id(entry) -> entry, LRU
        self._index: dict[tuple[int, ...], PrefixEntry] = {}  # block-aligned prefix -> entry
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def cached_tokens(self) -> int:
        return self._tokens

    def aligned(self, length: int) -> int:
        """`length` rounded down to whole blocks; 0 under min_tokens."""
        aligned = length - length % self.block
        return aligned if aligned >= self.min_tokens else 0

    def lookup(self, ids: Sequence[int]) -> PrefixHit | None:
        """The longest cached prefix of `ids` shorter than `ids` itself, marked recently used."""
        self.stats.lookups += 1
        for length in range(self.aligned(len(ids) - 1), 0, -self.block):
            if length < self.min_tokens:
                break
            entry = self._index.get(tuple(ids[:length]))
            if entry is not None:
                self._entries.move_to_end(id(entry))
                entry.hits += 1
                self.stats.hits += 1
                self.stats.tokens_reused += length
                return PrefixHit(entry, length)
        return None

    def storable(self, ids: Sequence[int]) -> int:
        """How many leading tokens of a prefilled prompt `put` would keep (0: none worth it)."""
        length = self.aligned(len(ids))
        if length == 0 or length > self.max_tokens or tuple(ids[:length]) in self._index:
            return 0
        return length

    def put(self, ids: Sequence[int], kv: Any) -> PrefixEntry | None:
        """Keep `kv` (the KV of exactly `ids`, block-aligned) and index its prefixes.

        Returns None when there is nothing worth keeping (too short, over the whole budget,
        or every prefix already cached).
        """
        length = self.aligned(len(ids))
        if length == 0 or length > self.max_tokens or length != len(ids):
            return None
        key = tuple(ids)
        if key in self._index:  # the whole thing is already cached (maybe as a longer entry)
            self._entries.move_to_end(id(self._index[key]))
            return None
        entry = PrefixEntry(key, kv)
        self._entries[id(entry)] = entry
        self._tokens += entry.length
        for end in range(self.min_tokens + (-self.min_tokens) % self.block, length + 1, self.block):
            self._index[key[:end]] = entry  # newest wins: the most recently used stays longest
        self.stats.entries += 1
        while self._tokens > self.max_tokens:
            self._evict()
        return entry

    def _evict(self) -> None:
        _, evicted = self._entries.popitem(last=False)
        self._tokens -= evicted.length
        self.stats.evictions += 1
        for end in range(self.block, evicted.length + 1, self.block):
            prefix = evicted.ids[:end]
            if self._index.get(prefix) is evicted:
                del self._index[prefix]

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self._tokens = 0
