"""The creative pool and pre-generation jobs (SQLAlchemy, per tenant)."""

from __future__ import annotations

import builtins
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select, true, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from copyloop.common import idempotency
from copyloop.common.errors import FailedPrecondition, NotFound
from copyloop.common.read_cache import ReadCache
from copyloop.generation import schema

DRAFT, APPROVED, LIVE, RETIRED = "draft", "approved", "live", "retired"
STATUSES = (DRAFT, APPROVED, LIVE, RETIRED)
PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
UNFINISHED = (PENDING, RUNNING)
UNIT_DONE, UNIT_FAILED = "done", "failed"  # a unit is PENDING until one of these
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Idempotency:
    """An idempotency key for a write: the reply is stored with the write, in its transaction."""

    method: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class NewUnit:
    """One unit of a pre-generation job: a pool slot and the requests that fill it (encoded)."""

    item_id: str
    item_version: int
    channel: str
    locale: str
    segment: str
    requests: list[dict[str, Any]]

    @property
    def slot(self) -> tuple[str, int, str, str, str]:
        return (self.item_id, self.item_version, self.channel, self.locale, self.segment)


@dataclass(frozen=True)
class PendingUnit:
    unit_index: int
    requests: list[dict[str, Any]]


@dataclass(frozen=True)
class UnfinishedJob:
    tenant: str
    job_id: str
    creative_status: str


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
    model_version: str = ""  # the copywriter version that wrote it; "" = template copy


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
    model_version: str = ""


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
    template_count: int = 0
    creative_status: str = DRAFT


class CreativeStore:
    """With `pool_cache_ttl_s` > 0, `by_items` (what every Recommend reads) answers from memory
    (ReadCache): any write to the pool through this store empties it, so a replica sees its own
    writes at once; other replicas' writes show after at most the TTL."""

    def __init__(self, engine: Engine, pool_cache_ttl_s: float = 0.0) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # (tenant, channel, locale, status, item_id, item_version) -> every segment's creatives
        self._pool: ReadCache[list[CreativeRecord]] | None = (
            ReadCache(pool_cache_ttl_s) if pool_cache_ttl_s > 0 else None
        )

    def _pool_changed(self) -> None:
        if self._pool is not None:
            self._pool.clear()

    def replay(self, tenant: str, key: Idempotency) -> bytes | None:
        """The reply stored for this idempotency key, or None when the key is new (raises
        INVALID_ARGUMENT when it was used with a different request)."""
        with self._sessions() as session:
            return idempotency.replay(
                session, schema.idempotency_records, tenant, key.method, key.key, key.request_hash
            )

    def remember(self, tenant: str, key: Idempotency, reply: bytes) -> bytes:
        """Stores the reply for the key and returns it; when a concurrent call with the same key
        stored one first, that one is returned, so every retry sees a single answer."""
        try:
            with self._sessions.begin() as session:
                self._remember(session, tenant, key, reply)
            return reply
        except IntegrityError:
            stored = self.replay(tenant, key)
            if stored is None:
                raise
            return stored

    def _remember(self, session: Session, tenant: str, key: Idempotency, reply: bytes) -> None:
        idempotency.remember(
            session,
            schema.idempotency_records,
            tenant,
            key.method,
            key.key,
            key.request_hash,
            reply,
        )

    def add(
        self,
        tenant: str,
        creatives: Sequence[NewCreative],
        status: str,
        idem: Idempotency | None = None,
        reply: Callable[[list[CreativeRecord]], bytes] | None = None,
    ) -> list[CreativeRecord]:
        """Stores variants; a text already in the pool under the same key is returned as it is
        (so retries and re-runs never duplicate creatives). With an idempotency key (`idem`), the
        `reply` built from the stored records is kept in the same transaction."""
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
            if idem is not None and idem.key and reply is not None:
                self._remember(session, tenant, idem, reply(out))
        self._pool_changed()
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
        model_version: str = "",
        template_version: str = "",
    ) -> dict[str, list[CreativeRecord]]:
        """Creatives for this segment and for everyone, best first; only those written by
        `model_version` and with `template_version` when set. With the cache: an item's
        pool for every segment is read once and kept, the segment and versions picked here."""
        if self._pool is None:
            return self._by_items(
                tenant,
                items,
                channel,
                locale,
                segment,
                status,
                max_per_item,
                model_version,
                template_version,
            )
        prefix = (tenant, channel, locale, status)
        pools: dict[str, list[CreativeRecord]] = {}
        missing = []
        for item in items:
            _, hit = self._pool.get((*prefix, *item))
            if hit is not None:
                pools[item[0]] = hit
            else:
                missing.append(item)
        if missing:
            generation = self._pool.generation()
            fresh = self._by_items(tenant, missing, channel, locale, None, status, None)
            for item in missing:
                if not self._pool.put((*prefix, *item), fresh.get(item[0], []), generation):
                    break  # a write raced this read: keep none of it
            pools.update(fresh)
        found = {}
        for item_id, pool in pools.items():
            mine = [
                r
                for r in pool
                if r.segment in (segment, "")
                and (not model_version or r.model_version == model_version)
                and (not template_version or r.template_version == template_version)
            ][:max_per_item]
            if mine:
                found[item_id] = _segment_first(mine, segment)
        return found

    def _by_items(
        self,
        tenant: str,
        items: Sequence[tuple[str, int]],
        channel: str,
        locale: str,
        segment: str | None,
        status: str,
        max_per_item: int | None,
        model_version: str = "",
        template_version: str = "",
    ) -> dict[str, list[CreativeRecord]]:
        """One query for many items: creatives for this segment and for everyone, best first
        (segment None: every segment's, best first, none left out)."""
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
                c.c.segment.in_({segment, ""}) if segment is not None else true(),
                c.c.model_version == model_version if model_version else true(),
                c.c.template_version == template_version if template_version else true(),
                or_(*match),
            )
            .order_by(c.c.item_id, c.c.quality.desc(), c.c.creative_id)
        )
        found: dict[str, list[CreativeRecord]] = {}
        with self._sessions() as session:
            for row in session.execute(stmt):
                bucket = found.setdefault(row.item_id, [])
                if max_per_item is None or len(bucket) < max_per_item:
                    bucket.append(_record(row))
        if segment is None:
            return found
        return {item_id: _segment_first(bucket, segment) for item_id, bucket in found.items()}

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
            self._pool_changed()
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

    def create_job(
        self,
        tenant: str,
        units: Sequence[NewUnit],
        creative_status: str,
        key: Idempotency | None = None,
    ) -> tuple[JobRecord, bool]:
        """A job for the units whose pool slot no unfinished job is filling yet; (job, created).

        A unit whose slot is pending in another job joins that job (one pending unit per slot,
        enforced by a partial unique index, so concurrent requests cannot both queue it). When
        every unit joins, the job holding the first one is returned and nothing is created.
        With an idempotency key, a retry returns the job the first call returned."""
        for attempt in range(3):
            try:
                with self._sessions.begin() as session:
                    return self._create_job(session, tenant, units, creative_status, key)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _create_job(
        self,
        session: Session,
        tenant: str,
        units: Sequence[NewUnit],
        creative_status: str,
        key: Idempotency | None,
    ) -> tuple[JobRecord, bool]:
        j, u = schema.pregeneration_jobs, schema.pregeneration_units
        if key is not None and key.key:
            stored = idempotency.replay(
                session, schema.idempotency_records, tenant, key.method, key.key, key.request_hash
            )
            if stored is not None:
                return self._job_in(session, tenant, stored.decode()), False
        slots = {unit.slot for unit in units}
        busy: dict[tuple[str, int, str, str, str], str] = {}
        item_ids = sorted({unit.item_id for unit in units})
        for n in range(0, len(item_ids), _CHUNK):
            found = session.execute(
                select(
                    u.c.job_id, u.c.item_id, u.c.item_version, u.c.channel, u.c.locale, u.c.segment
                ).where(
                    u.c.tenant_id == tenant,
                    u.c.state == PENDING,
                    u.c.item_id.in_(item_ids[n : n + _CHUNK]),
                )
            )
            for hit in found:
                slot = (hit.item_id, hit.item_version, hit.channel, hit.locale, hit.segment)
                if slot in slots:
                    busy[slot] = hit.job_id
        fresh = [unit for unit in units if unit.slot not in busy]
        if not fresh:
            job = self._job_in(session, tenant, busy[units[0].slot])
            created = False
        else:
            now = datetime.now(UTC)
            row = dict(
                tenant_id=tenant,
                job_id=f"job_{uuid.uuid4().hex[:20]}",
                state=PENDING,
                total_count=len(fresh),
                done_count=0,
                failed_count=0,
                creative_count=0,
                template_count=0,
                creative_status=creative_status,
                error="",
                create_time=now,
                update_time=now,
            )
            session.execute(j.insert().values(**row))
            session.execute(
                u.insert(),
                [
                    dict(
                        tenant_id=tenant,
                        job_id=row["job_id"],
                        unit_index=index,
                        item_id=unit.item_id,
                        item_version=unit.item_version,
                        channel=unit.channel,
                        locale=unit.locale,
                        segment=unit.segment,
                        state=PENDING,
                        requests=unit.requests,
                        update_time=now,
                    )
                    for index, unit in enumerate(fresh)
                ],
            )
            job, created = _job(row), True
        if key is not None and key.key:
            self._remember(session, tenant, key, job.job_id.encode())
        return job, created

    def _job_in(self, session: Session, tenant: str, job_id: str) -> JobRecord:
        j = schema.pregeneration_jobs
        row = session.execute(
            select(j).where(j.c.tenant_id == tenant, j.c.job_id == job_id)
        ).first()
        if row is None:
            raise NotFound("pregeneration job", job_id)
        return _job(row)

    def pending_units(self, tenant: str, job_id: str) -> builtins.list[PendingUnit]:
        """The units of a job still to do, in order (all of them for a new job)."""
        u = schema.pregeneration_units
        with self._sessions() as session:
            rows = session.execute(
                select(u.c.unit_index, u.c.requests)
                .where(u.c.tenant_id == tenant, u.c.job_id == job_id, u.c.state == PENDING)
                .order_by(u.c.unit_index)
            )
            return [PendingUnit(int(r.unit_index), list(r.requests)) for r in rows]

    def unit_done(
        self,
        tenant: str,
        job_id: str,
        unit_index: int,
        state: str,
        creatives: int,
        template: bool,
    ) -> None:
        """Records one unit's outcome and the job's progress in one transaction; a unit already
        recorded (a resumed job redoing it) changes nothing, so counts never double."""
        j, u = schema.pregeneration_jobs, schema.pregeneration_units
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            changed = session.execute(  # type: ignore[attr-defined]
                u.update()
                .where(
                    u.c.tenant_id == tenant,
                    u.c.job_id == job_id,
                    u.c.unit_index == unit_index,
                    u.c.state == PENDING,
                )
                .values(state=state, update_time=now)
            ).rowcount
            if changed != 1:
                return
            session.execute(
                j.update()
                .where(j.c.tenant_id == tenant, j.c.job_id == job_id)
                .values(
                    done_count=j.c.done_count + 1,
                    failed_count=j.c.failed_count + (1 if state == UNIT_FAILED else 0),
                    creative_count=j.c.creative_count + creatives,
                    template_count=j.c.template_count + (1 if template else 0),
                    update_time=now,
                )
            )

    def set_job_state(self, tenant: str, job_id: str, state: str, error: str = "") -> JobRecord:
        """Moves a job to `state`. A job that ends (SUCCEEDED or FAILED) releases the slots of
        any unit it did not do, so a later request can queue them again."""
        j, u = schema.pregeneration_jobs, schema.pregeneration_units
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.execute(
                j.update()
                .where(j.c.tenant_id == tenant, j.c.job_id == job_id)
                .values(state=state, error=error[:2000], update_time=now)
            )
            if state not in UNFINISHED:
                session.execute(
                    u.update()
                    .where(u.c.tenant_id == tenant, u.c.job_id == job_id, u.c.state == PENDING)
                    .values(state=UNIT_FAILED, update_time=now)
                )
            return self._job_in(session, tenant, job_id)

    def unfinished_jobs(self) -> builtins.list[UnfinishedJob]:
        """Jobs of every tenant left PENDING or RUNNING (a shutdown or a crash), oldest first."""
        j = schema.pregeneration_jobs
        with self._sessions() as session:
            rows = session.execute(
                select(j.c.tenant_id, j.c.job_id, j.c.creative_status)
                .where(j.c.state.in_(UNFINISHED))
                .order_by(j.c.create_time)
            )
            return [UnfinishedJob(r.tenant_id, r.job_id, r.creative_status) for r in rows]

    def get_job(self, tenant: str, job_id: str) -> JobRecord:
        with self._sessions() as session:
            return self._job_in(session, tenant, job_id)


def _segment_first(records: list[CreativeRecord], segment: str) -> list[CreativeRecord]:
    """Segment-specific copy first, then copy for everyone, each best quality first."""
    return sorted(records, key=lambda r: (r.segment != segment, -r.quality, r.creative_id))


def _record(row: Any) -> CreativeRecord:
    data = row if isinstance(row, dict) else row._asdict()
    return CreativeRecord(**{f: data[f] for f in CreativeRecord.__dataclass_fields__})


def _job(row: Any) -> JobRecord:
    data = row if isinstance(row, dict) else row._asdict()
    return JobRecord(**{f: data[f] for f in JobRecord.__dataclass_fields__})
