"""Conversions between protobuf types (well-known types, shared enums) and Python values."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from copyloop.common import vocabulary
from copyloop.v1 import common_pb2


def ts_to_epoch(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def epoch_to_ts(epoch: float) -> Timestamp:
    ts = Timestamp()
    seconds = int(epoch // 1)
    ts.seconds, ts.nanos = seconds, round((epoch - seconds) * 1e9) % 1_000_000_000
    return ts


def dt_to_ts(value: datetime) -> Timestamp:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return epoch_to_ts(value.timestamp())


def epoch_to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


# ---- the shared vocabulary <-> copyloop.v1 enums ---------------------------------------------
# Derived from the enum names so a channel added to the proto and to vocabulary.CHANNELS maps
# itself; the asserts catch the two drifting apart at import time.

CHANNEL_ENUMS: dict[str, common_pb2.Channel.ValueType] = {
    k.removeprefix("CHANNEL_").lower(): v for k, v in common_pb2.Channel.items() if v
}
CHANNEL_NAMES: dict[common_pb2.Channel.ValueType, str] = {
    value: name for name, value in CHANNEL_ENUMS.items()
}
PRICE_BAND_ENUMS: dict[str, common_pb2.PriceBand.ValueType] = {
    k.removeprefix("PRICE_BAND_").lower() if v else "": v for k, v in common_pb2.PriceBand.items()
}
PRICE_BAND_NAMES: dict[common_pb2.PriceBand.ValueType, str] = {
    value: name for name, value in PRICE_BAND_ENUMS.items()
}
assert set(CHANNEL_NAMES.values()) == set(vocabulary.CHANNELS), "proto channels != vocabulary"
assert set(PRICE_BAND_NAMES.values()) == set(vocabulary.PRICE_BANDS), "proto bands != vocabulary"
