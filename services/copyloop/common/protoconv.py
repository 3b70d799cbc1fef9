"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def ts_to_epoch(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def epoch_to_ts(epoch: float) -> Timestamp:
    ts = Timestamp()
    seconds = int(epoch // 1)
    ts.seconds, ts.nanos = seconds, int(round((epoch - seconds) * 1e9)) % 1_000_000_000
    return ts


def dt_to_ts(value: datetime) -> Timestamp:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return epoch_to_ts(value.timestamp())


def epoch_to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
