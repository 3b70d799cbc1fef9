"""Erased users: a service remembers only a hash of each deleted user id and when it was
deleted, so late events, impressions or outcomes about that user are dropped instead of
bringing the user back, and the id itself is not kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Column, Float, MetaData, String, Table, select
from sqlalchemy.orm import Session

_CHUNK = 500  # ids per IN (...) query


def tombstone_table(metadata: MetaData) -> Table:
    """Each service declares this table in its own metadata (database per service)."""
    return Table(
        "user_tombstones",
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column("user_hash", String(64), primary_key=True),
        Column("delete_time", Float, nullable=False),
    )


def user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def deleted_users(
    session: Session, table: Table, tenant: str, user_ids: Iterable[str]
) -> dict[str, float]:
    """user id -> deletion time, for those of `user_ids` that were deleted."""
    by_hash = {user_hash(u): u for u in set(user_ids)}
    hashes = list(by_hash)
    found: dict[str, float] = {}
    for start in range(0, len(hashes), _CHUNK):
        for digest, when in session.execute(
            select(table.c.user_hash, table.c.delete_time).where(
                table.c.tenant_id == tenant, table.c.user_hash.in_(hashes[start : start + _CHUNK])
            )
        ):
            found[by_hash[digest]] = when
    return found
