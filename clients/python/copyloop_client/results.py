"""Summaries of helper calls that span several RPCs (batched upserts and ingests), so a caller
gets one answer for a whole file however it was split."""

from __future__ import annotations

from dataclasses import dataclass, field

from copyloop.v1 import profile_pb2

__all__ = ["IngestSummary", "Rejection", "UpsertSummary"]


@dataclass
class UpsertSummary:
    """What UpsertItems did to every item, over all batches."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    results: list[profile_pb2.ItemWriteResult] = field(default_factory=list)

    def add(self, reply: profile_pb2.UpsertItemsResponse) -> None:
        for result in reply.results:
            if result.outcome == profile_pb2.ITEM_WRITE_OUTCOME_CREATED:
                self.created += 1
            elif result.outcome == profile_pb2.ITEM_WRITE_OUTCOME_UPDATED:
                self.updated += 1
            elif result.outcome == profile_pb2.ITEM_WRITE_OUTCOME_UNCHANGED:
                self.unchanged += 1
            self.results.append(result)

    @property
    def total(self) -> int:
        return len(self.results)


@dataclass(frozen=True)
class Rejection:
    """One event the service did not apply; `index` counts from the first event sent."""

    index: int
    event_id: str
    field: str
    reason: str


@dataclass
class IngestSummary:
    """Events accepted, replayed (duplicate event_id) and rejected, over all batches."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    sent: int = 0

    def add(self, summary: profile_pb2.IngestSummary, index_offset: int = 0) -> None:
        self.accepted += summary.accepted
        self.duplicate += summary.duplicate
        self.rejected += summary.rejected
        self.rejections.extend(
            Rejection(r.index + index_offset, r.event_id, r.field, r.reason)
            for r in summary.rejections
        )
