"""Write-behind: Recommend's serve-log rows and assignments are queued in memory and written
by a background thread in one transaction every `interval_s`, so a reply never waits on the
database's write lock and many requests share one commit.

Nothing is lost on an orderly stop: `close()` writes what is queued (SIGTERM -> the service's
stop -> the store's close), retrying a failing database for a while. A failed write keeps its
entries, first in line, and is retried with backoff; past `max_pending` entries the caller
writes itself, which pushes back on Recommend instead of growing memory without bound. Readers
that need what was served (outcomes, deletions, reports) call `flush()` first, so within a
process nothing is ever missing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("copyloop.fusion")

MAX_BACKOFF_S = 5.0


class WriteBehind(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], None],
        interval_s: float,
        max_pending: int = 20_000,
        name: str = "write-behind",
    ) -> None:
        self._write = write
        self._interval = interval_s
        self._max_pending = max_pending
        self._pending: list[T] = []
        self._lock = threading.Lock()  # guards _pending
        # One write at a time, so entries keep their order (re-entrant: a reader holding it
        # may write).
        self._flushing = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, entries: Iterable[T]) -> None:
        with self._lock:
            self._pending.extend(entries)
            full = len(self._pending) >= self._max_pending
        if full:
            self.flush()

    def pending(self) -> list[T]:
        """A copy of what is queued and not written yet."""
        with self._lock:
            return list(self._pending)

    @contextmanager
    def held(self) -> Iterator[list[T]]:
        """What is queued, with writing held off meanwhile: a reader that also reads the
        database inside sees every entry exactly once (queued or written, not both)."""
        with self._flushing:
            with self._lock:
                pending = list(self._pending)
            yield pending

    def flush(self) -> None:
        """Writes everything queued now; on failure the entries stay queued and it raises."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._write(batch)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                raise

    def close(self, timeout_s: float = 10.0) -> None:
        """Stops the thread and writes the rest, retrying a failing write for up to
        `timeout_s` (a database blip during shutdown); raises if it still fails."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout_s
        wait = 0.1
        while True:
            try:
                self.flush()
                return
            except Exception:
                if time.monotonic() + wait > deadline:
                    log.error("serve log: %d rows could not be written at stop", len(self._pending))
                    raise
                time.sleep(wait)
                wait = min(MAX_BACKOFF_S, wait * 2)

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                self.flush()
                wait = self._interval
            except Exception:
                wait = min(MAX_BACKOFF_S, max(wait * 2, 0.1))
                log.warning(
                    "serve log write failed; kept queued, retrying in %.1fs", wait, exc_info=True
                )
