"""The creative pool and pre-generation jobs (SQLAlchemy, per tenant)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select, tuple_
from sqlalchemy.orm import sessionmaker

from copyloop.common.errors import FailedPrecondition, NotFound
from copyloop.generation import schema

DRAFT, APPROVED, LIVE, RETIRED = "draft", "approved", "live", "retired"
STATUSES = (DRAFT, APPROVED, LIVE, RETIRED)
PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"


@dataclass(frozen=True)
class NewCreative:
    item_id: str
    item_version: int
    channel: str
    locale: str
    segment: str
    template_version: str
    text: str
    quality: float
    variant: dict[str, Any]


@dataclass(frozen=True)
class CreativeRecord:
    creative_id: str
    item_id: str
    item_version: int
    channel: str
    locale: str
    segment: str
    template_version: str
    text: str
    status: str
    quality: float
    variant: dict[str, Any]
    reviewer: str
    status_reason: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: str
    total_count: int
    done_count: int
    failed_count: int
    creative_count: int
    error: str
    create_time: datetime
    update_time: datetime


class CreativeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(
        self, tenant: str, creatives: Sequence[NewCreative], status: str
    ) -> list[CreativeRecord]:
        """Stores variants; a text already in the pool under the same key is returned as it is
        (so retries and re-runs never duplicate creatives)."""
        c = schema.creatives
        now = datetime.now(UTC)
        out: list[CreativeRecord] = []
        with self._sessions.begin() as session:
            for new in creatives:
                digest = hashlib.sha256(new.text.encode()).hexdigest()
                key = and_(
                    c.c.tenant_id == tenant,
                    c.c.item_id == new.item_id,
                    c.c.item_version == new.item_version,
                    c.c.channel == new.channel,
                    c.c.locale == new.locale,
                    c.c.segment == new.segment,
                    c.c.template_version == new.template_version,
                    c.c.text_hash == digest,
                )
                existing = session.execute(select(c).where(key)).first()
                if existing is not None:
                    out.append(_record(existing))
                    continue
                row = dict(
                    tenant_id=tenant,
                    creative_id=f"cr_{uuid.uuid4().hex[:20]}",
                    text_hash=digest,
                    status=status,
                    reviewer="",
                    status_reason="",
                    create_time=now,
                    update_time=now,
                    **new.__dict__,
                )
                session.execute(c.insert().values(**row))
                out.append(_record(row))
        return out

    def by_items(
        self,
        tenant: str,
        items: Sequence[tuple[str, int]],
        channel: str,
        locale: str,
        segment: str,
        status: str,
        max_per_item: int,
    ) -> dict[str, list[CreativeRecord]]:
        """One query for many items: creatives for this segment and for everyone, best first."""
        c = schema.creatives
        # A versioned query matches creatives written for that version, and creatives written
        # without a version (item_version 0: the caller did not know it).
        wanted_any_version = [i for i, v in items if not v]
        wanted_versioned = [(i, v) for i, v in items if v]
        match: list[ColumnElement[bool]] = []
        if wanted_any_version:
            match.append(c.c.item_id.in_(wanted_any_version))
        if wanted_versioned:
            match.append(tuple_(c.c.item_id, c.c.item_version).in_(wanted_versioned))
            match.append(
                and_(c.c.item_id.in_([i for i, _ in wanted_versioned]), c.c.item_version == 0)
            )
        stmt = (
            select(c)
            .where(
                c.c.tenant_id == tenant,
                c.c.channel == channel,
                c.c.locale == locale,
                c.c.status == status,
                c.c.segment.in_({segment, ""}),
                or_(*match),
            )
            .order_by(c.c.item_id, c.c.quality.desc(), c.c.creative_id)
        )
        found: dict[str, list[CreativeRecord]] = {}
        with self._sessions() as session:
            for row in session.execute(stmt):
                bucket = found.setdefault(row.item_id, [])
                if len(bucket) < max_per_item:
                    bucket.append(_record(row))
        # Segment-specific copy first, then copy for everyone.
        for bucket in found.values():
            bucket.sort(key=lambda r: (r.segment != segment, -r.quality, r.creative_id))
        return found

    def list(
        self, tenant: str, item_id: str, status: str, after: str, limit: int
    ) -> list[CreativeRecord]:
        c = schema.creatives
        stmt = select(c).where(c.c.tenant_id == tenant, c.c.creative_id > after)
        if item_id:
            stmt = stmt.where(c.c.item_id == item_id)
        if status:
            stmt = stmt.where(c.c.status == status)
        with self._sessions() as session:
            return [
                _record(r) for r in session.execute(stmt.order_by(c.c.creative_id).limit(limit))
            ]

    def set_status(
        self, tenant: str, creative_id: str, status: str, actor: str, reason: str
    ) -> CreativeRecord:
        c = schema.creatives
        with self._sessions.begin() as session:
            row = session.execute(
                select(c).where(c.c.tenant_id == tenant, c.c.creative_id == creative_id)
            ).first()
            if row is None:
                raise NotFound("creative", creative_id)
            if row.status == RETIRED and status != RETIRED:
                raise FailedPrecondition(
                    f"creative {creative_id} is retired; generate a new one instead",
                    "STATUS",
                    f"creatives/{creative_id}",
                )
            if row.status == LIVE and status == APPROVED:
                return _record(row)  # approving a live creative changes nothing
            now = datetime.now(UTC)
            session.execute(
                c.update()
                .where(c.c.tenant_id == tenant, c.c.creative_id == creative_id)
                .values(
                    status=status,
                    reviewer=actor or row.reviewer,
                    status_reason=reason,
                    update_time=now,
                )
            )
            return _record(
                {
                    **row._asdict(),
                    "status": status,
                    "reviewer": actor or row.reviewer,
                    "status_reason": reason,
                    "update_time": now,
                }
            )

    # ---- jobs ----------------------------------------------------------------------------

    def create_job(self, tenant: str, total: int) -> JobRecord:
        now = datetime.now(UTC)
        row = dict(
            tenant_id=tenant,
            job_id=f"job_{uuid.uuid4().hex[:20]}",
            state=PENDING,
            total_count=total,
            done_count=0,
            failed_count=0,
            creative_count=0,
            error="",
            create_time=now,
            update_time=now,
        )
        with self._sessions.begin() as session:
            session.execute(schema.pregeneration_jobs.insert().values(**row))
        return _job(row)

    def update_job(self, tenant: str, job_id: str, **changes: Any) -> None:
        j = schema.pregeneration_jobs
        with self._sessions.begin() as session:
            session.execute(
                j.update()
                .where(j.c.tenant_id == tenant, j.c.job_id == job_id)
                .values(update_time=datetime.now(UTC), **changes)
            )

    def get_job(self, tenant: str, job_id: str) -> JobRecord:
        j = schema.pregeneration_jobs
        with self._sessions() as session:
            row = session.execute(
                select(j).where(j.c.tenant_id == tenant, j.c.job_id == job_id)
            ).first()
        if row is None:
            raise NotFound("pregeneration job", job_id)
        return _job(row)


def _record(row: Any) -> CreativeRecord:
    data = row if isinstance(row, dict) else row._asdict()
    return CreativeRecord(**{f: data[f] for f in CreativeRecord.__dataclass_fields__})


def _job(row: Any) -> JobRecord:
    data = row if isinstance(row, dict) else row._asdict()
    return JobRecord(**{f: data[f] for f in JobRecord.__dataclass_fields__})
