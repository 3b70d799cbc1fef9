"""Retention of prediction's training log: impressions older than COPYLOOP_RETENTION_DAYS are
pruned in batches with their outcomes, and outcomes older than the window that never met their
impression (see common.retention). Model versions (the registry) are kept; a training window
can reach back at most as far as the retention window."""

from __future__ import annotations

from sqlalchemy import Engine

from copyloop.common.config import ServiceSettings
from copyloop.common.retention import Cascade, Pruned, RetentionTask, merge, prune_by_time
from copyloop.prediction import schema


def prune_training_log(engine: Engine, cutoff: float, batch_size: int) -> Pruned:
    """Deletes training-log rows from before `cutoff` (epoch seconds)."""
    return merge(
        prune_by_time(
            engine,
            schema.impressions,
            "impression_id",
            "impression_time",
            cutoff,
            batch_size,
            cascades=[Cascade(schema.outcomes, "impression_id")],
        ),
        prune_by_time(engine, schema.outcomes, "outcome_id", "outcome_time", cutoff, batch_size),
    )


def retention_task(engine: Engine, settings: ServiceSettings) -> RetentionTask:
    return RetentionTask(
        "prediction",
        settings,
        lambda cutoff: prune_training_log(engine, cutoff, settings.retention_batch_size),
    )
