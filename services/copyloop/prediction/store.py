"""The training log (impressions with the features as served, joined to their outcomes) and
the model registry (versions, metrics, the live pointer), per tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import sessionmaker

from copyloop.common.errors import FailedPrecondition, NotFound
from copyloop.common.tombstones import deleted_users, user_hash
from copyloop.prediction import schema

REGISTERED, LIVE, RETIRED = "registered", "live", "retired"
OUTCOME_TYPES = ("click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class CopyAlternative:
    """A copy offered for an impression's item but not chosen."""

    creative_id: str
    copy_text: str


@dataclass(frozen=True)
class LoggedImpression:
    impression_id: str
    request_id: str
    user_id: str
    item_id: str
    creative_id: str
    features: dict[str, Any]
    served_p_ctr: float
    model_version: str
    experiment_arm: str
    impression_time: float
    propensity: float = 0.0  # of the serving policy's choice; 0 = unknown
    alternatives: tuple[CopyAlternative, ...] = ()  # the copies it did not choose


@dataclass(frozen=True)
class LoggedOutcome:
    outcome_id: str
    impression_id: str
    type: str
    value: float
    outcome_time: float
    user_id: str = ""  # when known: lets an outcome logged before its impression be erased


@dataclass(frozen=True)
class LogResult:
    """What a log call did: stored now, already stored, dropped because the user was deleted
    after it happened, and (outcomes) stored before their impression arrived."""

    accepted: int
    duplicate: int
    erased: int
    unmatched: int = 0


@dataclass(frozen=True)
class LabelledImpression:
    """An impression with what followed it: the training example as logged."""

    impression: LoggedImpression
    clicked: bool
    converted: bool
    revenue: float


@dataclass(frozen=True)
class VersionRecord:
    version: str
    sequence: int
    state: str
    train_window: tuple[float, float]
    eval_window: tuple[float, float]
    metrics: dict[str, Any]
    artifact_path: str
    report_path: str
    create_time: datetime
    promote_time: datetime | None
    previous_live: str


class PredictionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # ---- training log --------------------------------------------------------------------

    def log_impressions(self, tenant: str, rows: Sequence[LoggedImpression]) -> LogResult:
        """An impression id already logged is never logged twice; impressions of a user deleted
        after they were shown are dropped."""
        t = schema.impressions
        with self._sessions.begin() as session:
            deleted = deleted_users(
                session, schema.user_tombstones, tenant, (r.user_id for r in rows)
            )
            kept = [r for r in rows if not _erased(deleted, r.user_id, r.impression_time)]
            erased = len(rows) - len(kept)
            rows = kept
            ids = [r.impression_id for r in rows]
            known = set(
                session.scalars(
                    select(t.c.impression_id).where(
                        t.c.tenant_id == tenant, t.c.impression_id.in_(ids)
                    )
                )
            )
            fresh, seen = [], set(known)
            for r in rows:
                if r.impression_id not in seen:
                    seen.add(r.impression_id)
                    fresh.append(
                        {
                            "tenant_id": tenant,
                            **r.__dict__,
                            "alternatives": [a.__dict__ for a in r.alternatives],
                        }
                    )
            if fresh:
                session.execute(t.insert(), fresh)
        return LogResult(len(fresh), len(rows) - len(fresh), erased)

    def log_outcomes(self, tenant: str, rows: Sequence[LoggedOutcome]) -> LogResult:
        """Outcomes are kept even when their impression is not logged yet (delivery order is
        not guaranteed); training joins them by impression id once both are there. Outcomes of
        a user deleted after they happened are dropped."""
        o, i = schema.outcomes, schema.impressions
        with self._sessions.begin() as session:
            deleted = deleted_users(
                session, schema.user_tombstones, tenant, (r.user_id for r in rows if r.user_id)
            )
            kept = [r for r in rows if not _erased(deleted, r.user_id, r.outcome_time)]
            erased = len(rows) - len(kept)
            rows = kept
            known_outcomes = set(
                session.scalars(
                    select(o.c.outcome_id).where(
                        o.c.tenant_id == tenant, o.c.outcome_id.in_([r.outcome_id for r in rows])
                    )
                )
            )
            impressions = set(
                session.scalars(
                    select(i.c.impression_id).where(
                        i.c.tenant_id == tenant,
                        i.c.impression_id.in_({r.impression_id for r in rows}),
                    )
                )
            )
            fresh, duplicate, unmatched = [], 0, 0
            for r in rows:
                if r.outcome_id in known_outcomes:
                    duplicate += 1
                    continue
                unmatched += r.impression_id not in impressions
                known_outcomes.add(r.outcome_id)
                fresh.append({"tenant_id": tenant, **r.__dict__})
            if fresh:
                session.execute(o.insert(), fresh)
        return LogResult(len(fresh), duplicate, erased, unmatched)

    def delete_user(self, tenant: str, user_id: str, now: float) -> tuple[int, int]:
        """Erases the user's impressions and every outcome of them (including outcomes that
        arrived before their impression) and leaves a tombstone holding only a hash of the id.
        Returns (impressions, outcomes) deleted."""
        i, o, tomb = schema.impressions, schema.outcomes, schema.user_tombstones
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(i.c.impression_id).where(i.c.tenant_id == tenant, i.c.user_id == user_id)
                )
            )
            outcomes = _count(
                session.execute(delete(o).where(o.c.tenant_id == tenant, o.c.user_id == user_id))
            )
            for start in range(0, len(ids), 500):
                outcomes += _count(
                    session.execute(
                        delete(o).where(
                            o.c.tenant_id == tenant, o.c.impression_id.in_(ids[start : start + 500])
                        )
                    )
                )
            impressions = _count(
                session.execute(delete(i).where(i.c.tenant_id == tenant, i.c.user_id == user_id))
            )
            digest = user_hash(user_id)
            updated = session.execute(
                tomb.update()
                .where(tomb.c.tenant_id == tenant, tomb.c.user_hash == digest)
                .values(delete_time=now)
            )
            if not _count(updated):
                session.execute(
                    tomb.insert().values(tenant_id=tenant, user_hash=digest, delete_time=now)
                )
        return impressions, outcomes

    def labelled(self, tenant: str, start: float, end: float) -> list[LabelledImpression]:
        """Impressions shown in [start, end) with their outcomes joined by impression id."""
        i, o = schema.impressions, schema.outcomes
        with self._sessions() as session:
            rows = session.execute(
                select(i)
                .where(
                    i.c.tenant_id == tenant, i.c.impression_time >= start, i.c.impression_time < end
                )
                .order_by(i.c.impression_time, i.c.impression_id)
            ).all()
            ids = [r.impression_id for r in rows]
            followed: dict[str, set[str]] = {}
            revenue: dict[str, float] = {}
            for chunk in range(0, len(ids), 5000):
                for out in session.execute(
                    select(o.c.impression_id, o.c.type, o.c.value).where(
                        o.c.tenant_id == tenant, o.c.impression_id.in_(ids[chunk : chunk + 5000])
                    )
                ):
                    followed.setdefault(out.impression_id, set()).add(out.type)
                    if out.type == "purchase":
                        revenue[out.impression_id] = revenue.get(out.impression_id, 0.0) + out.value
        result = []
        for r in rows:
            kinds = followed.get(r.impression_id, set())
            converted = "purchase" in kinds
            result.append(
                LabelledImpression(
                    _impression(r),
                    clicked=bool(kinds) or converted,
                    converted=converted,
                    revenue=revenue.get(r.impression_id, 0.0),
                )
            )
        return result

    def count_impressions(self, tenant: str) -> int:
        i = schema.impressions
        with self._sessions() as session:
            return int(
                session.scalar(select(func.count()).select_from(i).where(i.c.tenant_id == tenant))
                or 0
            )

    def tenants(self) -> list[str]:
        """Tenants with anything in the training log."""
        i = schema.impressions
        with self._sessions() as session:
            return sorted(session.scalars(select(i.c.tenant_id).distinct()))

    def recent_copy_texts(self, tenant: str, limit: int) -> list[str]:
        """Up to `limit` distinct copy texts of the tenant's latest impressions (shown or
        offered), newest first: the copy its callers are likely to send again."""
        i = schema.impressions
        texts: dict[str, None] = {}
        if limit <= 0:
            return []
        stmt = (
            select(i.c.features, i.c.alternatives)
            .where(i.c.tenant_id == tenant)
            .order_by(i.c.impression_time.desc())
            .limit(limit * 2)
        )
        with self._sessions() as session:
            for features, alternatives in session.execute(stmt):
                shown = (features or {}).get("copy", {}).get("text")
                offered = [a.get("copy_text") for a in alternatives or ()]
                for text in (shown, *offered):
                    if isinstance(text, str) and text:
                        texts[text] = None
                if len(texts) >= limit:
                    break
        return list(texts)[:limit]

    def count_outcomes_since(self, tenant: str, since: float) -> int:
        """Outcomes that happened at or after `since` (epoch seconds)."""
        o = schema.outcomes
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(o)
                    .where(o.c.tenant_id == tenant, o.c.outcome_time >= since)
                )
                or 0
            )

    def impression_times(self, tenant: str, start: float, end: float) -> list[float]:
        """Times of the impressions shown in [start, end), in order."""
        i = schema.impressions
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(i.c.impression_time)
                    .where(
                        i.c.tenant_id == tenant,
                        i.c.impression_time >= start,
                        i.c.impression_time < end,
                    )
                    .order_by(i.c.impression_time)
                )
            )

    def served(self, tenant: str, version: str, before: float) -> tuple[list[bool], list[float]]:
        """(clicked, served pCTR) of the impressions `version` scored, shown before `before`:
        what the live guardrail compares."""
        i, o = schema.impressions, schema.outcomes
        followed = (
            select(o.c.impression_id)
            .where(o.c.tenant_id == tenant, o.c.impression_id == i.c.impression_id)
            .exists()
        )
        with self._sessions() as session:
            rows = session.execute(
                select(followed, i.c.served_p_ctr).where(
                    i.c.tenant_id == tenant,
                    i.c.model_version == version,
                    i.c.impression_time < before,
                )
            ).all()
        return [bool(r[0]) for r in rows], [float(r[1]) for r in rows]

    # ---- model registry ------------------------------------------------------------------

    def annotate(self, tenant: str, version: str, key: str, value: Any) -> None:
        """Adds `key` to a version's metrics document: why it was promoted, refused or rolled
        back, kept with the version."""
        m = schema.model_versions
        with self._sessions.begin() as session:
            metrics = session.scalar(
                select(m.c.metrics).where(m.c.tenant_id == tenant, m.c.version == version)
            )
            if metrics is None:
                raise NotFound("model version", version)
            session.execute(
                m.update()
                .where(m.c.tenant_id == tenant, m.c.version == version)
                .values(metrics={**metrics, key: value})
            )

    def next_version(self, tenant: str) -> tuple[str, int]:
        m = schema.model_versions
        with self._sessions() as session:
            last = (
                session.scalar(select(func.max(m.c.sequence)).where(m.c.tenant_id == tenant)) or 0
            )
        return f"v{last + 1}", last + 1

    def register(self, tenant: str, record: VersionRecord) -> VersionRecord:
        m = schema.model_versions
        with self._sessions.begin() as session:
            session.execute(
                m.insert().values(
                    tenant_id=tenant,
                    version=record.version,
                    sequence=record.sequence,
                    state=record.state,
                    train_start=record.train_window[0],
                    train_end=record.train_window[1],
                    eval_start=record.eval_window[0],
                    eval_end=record.eval_window[1],
                    metrics=record.metrics,
                    artifact_path=record.artifact_path,
                    report_path=record.report_path,
                    create_time=record.create_time,
                    promote_time=record.promote_time,
                    previous_live=record.previous_live,
                )
            )
        return record

    def get(self, tenant: str, version: str) -> VersionRecord:
        m = schema.model_versions
        with self._sessions() as session:
            stmt = select(m).where(m.c.tenant_id == tenant)
            stmt = (
                stmt.where(m.c.state == LIVE)
                if version == "live"
                else stmt.where(m.c.version == version)
            )
            row = session.execute(stmt).first()
        if row is None:
            raise NotFound("model version", version)
        return _version(row)

    def live(self, tenant: str) -> VersionRecord | None:
        try:
            return self.get(tenant, "live")
        except NotFound:
            return None

    def list(self, tenant: str, before_sequence: int, limit: int) -> list[VersionRecord]:
        m = schema.model_versions
        stmt = select(m).where(m.c.tenant_id == tenant)
        if before_sequence:
            stmt = stmt.where(m.c.sequence < before_sequence)
        with self._sessions() as session:
            return [
                _version(r)
                for r in session.execute(stmt.order_by(m.c.sequence.desc()).limit(limit))
            ]

    def make_live(self, tenant: str, version: str) -> VersionRecord:
        """Atomically retires the live version and makes `version` live, remembering the one it
        replaced (for rollback)."""
        m = schema.model_versions
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            target = session.execute(
                select(m).where(m.c.tenant_id == tenant, m.c.version == version)
            ).first()
            if target is None:
                raise NotFound("model version", version)
            current = session.scalar(
                select(m.c.version).where(m.c.tenant_id == tenant, m.c.state == LIVE)
            )
            if current == version:
                return _version(target)
            if current:
                session.execute(
                    m.update()
                    .where(m.c.tenant_id == tenant, m.c.version == current)
                    .values(state=RETIRED)
                )
            session.execute(
                m.update()
                .where(m.c.tenant_id == tenant, m.c.version == version)
                .values(state=LIVE, promote_time=now, previous_live=current or "")
            )
        return self.get(tenant, version)

    def rollback(self, tenant: str) -> VersionRecord:
        live = self.live(tenant)
        if live is None or not live.previous_live:
            raise FailedPrecondition(
                "no earlier live version to roll back to", "STATE", "model_versions"
            )
        m = schema.model_versions
        with self._sessions.begin() as session:
            session.execute(
                m.update()
                .where(m.c.tenant_id == tenant, m.c.version == live.version)
                .values(state=RETIRED)
            )
            previous = session.execute(
                select(m.c.previous_live).where(
                    m.c.tenant_id == tenant, m.c.version == live.previous_live
                )
            ).scalar_one()
            session.execute(
                m.update()
                .where(m.c.tenant_id == tenant, m.c.version == live.previous_live)
                .values(state=LIVE, promote_time=datetime.now(UTC), previous_live=previous)
            )
        return self.get(tenant, live.previous_live)


def _erased(deleted: dict[str, float], user_id: str, happened: float) -> bool:
    when = deleted.get(user_id)
    return when is not None and happened <= when


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _impression(row: Any) -> LoggedImpression:
    data = row._asdict()
    fields = {f: data[f] for f in LoggedImpression.__dataclass_fields__}
    fields["propensity"] = float(fields["propensity"] or 0.0)
    fields["alternatives"] = tuple(CopyAlternative(**a) for a in fields["alternatives"] or ())
    return LoggedImpression(**fields)


def _version(row: Any) -> VersionRecord:
    return VersionRecord(
        version=row.version,
        sequence=row.sequence,
        state=row.state,
        train_window=(row.train_start, row.train_end),
        eval_window=(row.eval_start, row.eval_end),
        metrics=dict(row.metrics or {}),
        artifact_path=row.artifact_path,
        report_path=row.report_path,
        create_time=row.create_time,
        promote_time=row.promote_time,
        previous_live=row.previous_live,
    )
