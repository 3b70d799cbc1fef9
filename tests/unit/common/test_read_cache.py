"""ReadCache: entries expire together each TTL epoch, writes drop what they change, and a read
that raced a write is not kept."""

from __future__ import annotations

import pytest

from copyloop.common import read_cache
from copyloop.common.read_cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(read_cache.time, "monotonic", fake)
    return fake


def test_entries_kept_in_one_epoch_expire_together(clock: Clock) -> None:
    cache: ReadCache[int | None] = ReadCache(ttl_s=10)
    clock.now = 1001.0  # epoch 100 (1000-1010)
    assert cache.put("a", 1, cache.generation()) and cache.get("a") == (True, 1)
    clock.now = 1009.9
    assert cache.put("b", None, cache.generation())  # "known to be absent" is kept too
    assert cache.get("a") == (True, 1) and cache.get("b") == (True, None)
    clock.now = 1010.0  # the next epoch: both gone at once, however recently put
    assert cache.get("a") == (False, None) and cache.get("b") == (False, None)


def test_a_write_drops_its_keys_and_refuses_reads_that_raced_it(clock: Clock) -> None:
    cache: ReadCache[str] = ReadCache(ttl_s=10)
    cache.put("a", "old", cache.generation())
    cache.put("b", "kept", cache.generation())
    before = cache.generation()  # a read starts...
    cache.drop("a")  # ...a write commits meanwhile...
    assert not cache.put("a", "read before the write", before)  # ...so its result is not kept
    assert cache.get("a") == (False, None) and cache.get("b") == (True, "kept")
    assert cache.put("a", "new", cache.generation()) and cache.get("a") == (True, "new")
    cache.clear()
    assert cache.get("b") == (False, None)


def test_bounded() -> None:
    cache: ReadCache[int] = ReadCache(ttl_s=10, max_entries=2)
    for n in range(3):
        cache.put(n, n, cache.generation())
    assert cache.get(2) == (True, 2) and cache.get(0) == (False, None)
    with pytest.raises(ValueError):
        ReadCache(ttl_s=0)
