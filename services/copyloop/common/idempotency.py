"""Idempotency keys for write RPCs, stored in the same transaction as the write.

A retry with the same key and the same request gets the first reply back without writing again;
the same key with a different request is a client bug and is rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, select
from sqlalchemy.orm import Session

from copyloop.common.errors import FieldViolation, InvalidArgument

MAX_KEY_LENGTH = 128
T = TypeVar("T")


def idempotency_table(metadata: MetaData) -> Table:
    """Each service declares this table in its own metadata (database per service)."""
    return Table(
        "idempotency_records",
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column("method", String(128), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("create_time", DateTime(timezone=True), nullable=False),
    )


def fingerprint(request: Any) -> str:
    """A stable hash of a domain request (dataclasses, lists, dicts, scalars)."""

    def plain(value: Any) -> Any:
        return asdict(value) if is_dataclass(value) and not isinstance(value, type) else str(value)

    return hashlib.sha256(json.dumps(request, sort_keys=True, default=plain).encode()).hexdigest()


def validate_key(key: str, field: str = "idempotency_key") -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument([FieldViolation(field, f"at most {MAX_KEY_LENGTH} characters")])


def replay(
    session: Session, table: Table, tenant: str, method: str, key: str, request_hash: str
) -> bytes | None:
    """The stored reply for this key, or None if the key is new."""
    if not key:
        return None
    row = session.execute(
        select(table.c.request_hash, table.c.response).where(
            table.c.tenant_id == tenant, table.c.method == method, table.c.key == key
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise InvalidArgument(
            [FieldViolation("idempotency_key", "already used with a different request")]
        )
    return bytes(row.response)


def remember(
    session: Session,
    table: Table,
    tenant: str,
    method: str,
    key: str,
    request_hash: str,
    response: bytes,
) -> None:
    if not key:
        return
    session.execute(
        table.insert().values(
            tenant_id=tenant,
            method=method,
            key=key,
            request_hash=request_hash,
            response=response,
            create_time=datetime.now(UTC),
        )
    )


def run_idempotent(
    session: Session,
    table: Table,
    tenant: str,
    method: str,
    key: str,
    request_hash: str,
    write: Callable[[], T],
    encode: Callable[[T], bytes],
    decode: Callable[[bytes], T],
) -> T:
    """Runs `write` once per key, inside the caller's transaction; replays return the first
    result. Without a key it simply writes."""
    stored = replay(session, table, tenant, method, key, request_hash)
    if stored is not None:
        return decode(stored)
    result = write()
    remember(session, table, tenant, method, key, request_hash, encode(result))
    return result
