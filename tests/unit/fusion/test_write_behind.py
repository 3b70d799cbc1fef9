"""The write-behind loses nothing: a failed write keeps its entries first in line, the thread
retries them, a full queue makes the caller write, and close() writes the rest."""

from __future__ import annotations

import threading

import pytest

from copyloop.fusion.write_behind import WriteBehind


class Sink:
    """Records written batches; fails while `down` is set (the database being unavailable)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.down = False
        self.wrote = threading.Event()

    def write(self, batch: list[int]) -> None:
        if self.down:
            raise ConnectionError("database unavailable")
        self.batches.append(batch)
        self.wrote.set()


def test_entries_are_batched_and_close_writes_what_is_left() -> None:
    sink = Sink()
    queue = WriteBehind(sink.write, interval_s=3600)
    queue.add([1, 2])
    queue.add([3])
    assert sink.batches == [] and queue.pending() == [1, 2, 3]
    queue.close()
    assert sink.batches == [[1, 2, 3]]


def test_a_failed_write_keeps_its_entries_in_order_and_the_thread_retries() -> None:
    sink = Sink()
    sink.down = True
    queue = WriteBehind(sink.write, interval_s=3600)
    queue.add([1, 2])
    with pytest.raises(ConnectionError):
        queue.flush()
    queue.add([3])
    assert queue.pending() == [1, 2, 3]
    sink.down = False
    queue.close()
    assert sink.batches == [[1, 2, 3]]


def test_the_background_thread_writes_without_being_asked() -> None:
    sink = Sink()
    queue = WriteBehind(sink.write, interval_s=0.01)
    queue.add([7])
    assert sink.wrote.wait(5)
    assert sink.batches == [[7]] and queue.pending() == []
    queue.close()


def test_a_full_queue_is_written_by_the_caller() -> None:
    sink = Sink()
    queue = WriteBehind(sink.write, interval_s=3600, max_pending=3)
    queue.add([1, 2])
    assert sink.batches == []
    queue.add([3])
    assert sink.batches == [[1, 2, 3]]
    queue.close()


def test_a_reader_holding_the_queue_sees_each_entry_once() -> None:
    """While held, nothing is written: what the reader got as queued cannot also reach the
    database it reads next."""
    sink = Sink()
    queue = WriteBehind(sink.write, interval_s=3600)
    queue.add([1, 2])
    with queue.held() as pending:
        writer = threading.Thread(target=queue.flush)
        writer.start()
        writer.join(timeout=0.2)
        assert writer.is_alive() and sink.batches == [] and pending == [1, 2]
    writer.join(timeout=5)
    assert sink.batches == [[1, 2]]
    queue.close()


def test_close_retries_a_database_that_comes_back_during_shutdown() -> None:
    sink = Sink()
    sink.down = True
    queue = WriteBehind(sink.write, interval_s=3600)
    queue.add([1, 2])
    threading.Timer(0.3, lambda: setattr(sink, "down", False)).start()
    queue.close(timeout_s=10)
    assert sink.batches == [[1, 2]]


def test_close_gives_up_on_a_database_that_stays_down() -> None:
    sink = Sink()
    sink.down = True
    queue = WriteBehind(sink.write, interval_s=3600)
    queue.add([1])
    with pytest.raises(ConnectionError):
        queue.close(timeout_s=0.3)
    assert queue.pending() == [1]
