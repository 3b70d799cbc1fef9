"""Retention of fusion's serve log: served items, their outcomes and the per-request feature
snapshots older than COPYLOOP_RETENTION_DAYS are pruned in batches (see common.retention).

Experiment assignments (a user keeps their arm) and bandit statistics (running totals) are
kept: they are small and what later requests need. Outcomes are pruned with their impression,
and on their own once older than the window (an outcome of a pruned impression is rejected as
unknown, as for any impression the log never had)."""

from __future__ import annotations

from sqlalchemy import Engine

from copyloop.common.config import ServiceSettings
from copyloop.common.retention import Cascade, Pruned, RetentionTask, merge, prune_by_time
from copyloop.fusion import schema


def prune_serve_log(engine: Engine, cutoff: float, batch_size: int) -> Pruned:
    """Deletes serve-log rows from before `cutoff` (epoch seconds)."""
    return merge(
        prune_by_time(
            engine,
            schema.served,
            "impression_id",
            "serve_time",
            cutoff,
            batch_size,
            cascades=[Cascade(schema.outcomes, "impression_id")],
        ),
        prune_by_time(
            engine, schema.served_requests, "request_id", "serve_time", cutoff, batch_size
        ),
        prune_by_time(engine, schema.outcomes, "event_id", "event_time", cutoff, batch_size),
    )


def retention_task(engine: Engine, settings: ServiceSettings) -> RetentionTask:
    return RetentionTask(
        "fusion",
        settings,
        lambda cutoff: prune_serve_log(engine, cutoff, settings.retention_batch_size),
    )
