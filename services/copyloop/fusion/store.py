"""FusionService persistence: experiments, assignments, the serve log, outcomes, bandit stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Float, Table, and_, cast, delete, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from copyloop.common.errors import AlreadyExists, NotFound
from copyloop.common.read_cache import ReadCache
from copyloop.fusion import outbox, schema
from copyloop.fusion.bandit import LiftStats
from copyloop.fusion.experiments import ArmCounts, SliceCounts
from copyloop.fusion.performance import (
    LIFT_PRIOR_CLICKS,
    SYNTHETIC_PREFIXES,
    CreativePerformance,
    PerformanceQuery,
)
from copyloop.fusion.write_behind import WriteBehind

RUNNING, STOPPED = "running", "stopped"
# The part of a served row's features shared by every item of a request (see log_served).
REQUEST_FEATURES = ("profile", "context")
FEEDBACK_TYPES = ("impression", "click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class ArmSpec:
    arm_id: str
    strategy: str
    traffic_weight: float
    # Serve only copy of this copywriter model / prompt template version ("" = any).
    copywriter_version: str = ""
    prompt_template_version: str = ""

    @property
    def versions(self) -> dict[str, str]:
        """The pinned versions as stored in experiments.arm_versions ({} = none)."""
        pinned = {
            "copywriter_version": self.copywriter_version,
            "prompt_template_version": self.prompt_template_version,
        }
        return pinned if any(pinned.values()) else {}


@dataclass(frozen=True)
class ExperimentRecord:
    experiment_id: str
    display_name: str
    arms: tuple[ArmSpec, ...]
    state: str
    create_time: datetime
    stop_time: datetime | None


@dataclass(frozen=True)
class ServedRow:
    impression_id: str
    request_id: str
    user_id: str
    item_id: str
    creative_id: str
    segment: str
    experiment_id: str
    arm_id: str
    p_ctr: float
    p_cvr: float
    price: float
    copy_source: str
    model_version: str
    serve_time: float
    features: dict[str, Any]
    angle: str = ""  # the copy's marketing angle ("" when unknown)


@dataclass(frozen=True)
class SelectionState:
    """Per creative and per (segment, angle) bandit statistics, and recent exposures per item."""

    creatives: dict[str, LiftStats]
    groups: dict[str, LiftStats]  # by angle
    exposures: dict[str, int]  # by item id


@dataclass
class Bump:
    """Counts to add to the bandit statistics in one transaction."""

    impressions: int = 0
    clicks: int = 0
    expected_clicks: float = 0.0

    def add(self, other: Bump) -> None:
        self.impressions += other.impressions
        self.clicks += other.clicks
        self.expected_clicks += other.expected_clicks


@dataclass(frozen=True)
class OutcomeIn:
    index: int
    event_id: str
    request_id: str
    impression_id: str
    type: str
    value: float
    event_time: float


@dataclass(frozen=True)
class UserDeletion:
    """What DeleteUser removed from fusion's own tables, and what it queued."""

    impressions: int
    outcomes: int
    assignments: int
    dropped_pending: int
    queued: int


@dataclass(frozen=True)
class AppliedOutcome:
    """An outcome stored now, with the serve row it belongs to (for downstream feedback)."""

    outcome: OutcomeIn
    served: ServedRow
    first_of_type: bool  # the first event of this type for this impression


@dataclass(frozen=True)
class _Served:
    """Serve-log rows of one request, queued for the write-behind."""

    tenant: str
    rows: Sequence[ServedRow]


@dataclass(frozen=True)
class _Assigned:
    """An experiment assignment, queued for the write-behind."""

    tenant: str
    experiment_id: str
    user_id: str
    arm_id: str
    assign_time: float


EXPOSURE_TTL_S = 30.0
UNKNOWN_IMPRESSION = "impression_id: unknown impression"
ASSIGNED_MAX = 200_000  # assignments remembered as written; forgotten whole past this


class FusionStore:
    """With `write_behind_s` > 0 the serve log and assignments are written in batches by a
    background thread (fusion.write_behind); every read of them here writes the queue first.
    With `cache_ttl_s` > 0 the reads Recommend makes on every call are cached (ReadCache: this
    store's writes drop what they change; other replicas' show within the TTL).
    `close()` writes what is queued and releases the engine."""

    def __init__(
        self, engine: Engine, write_behind_s: float = 0.0, cache_ttl_s: float = 0.0
    ) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        self._queue: WriteBehind[_Served | _Assigned] | None = (
            WriteBehind(self._write_queued, write_behind_s, name="fusion-serve-log")
            if write_behind_s > 0
            else None
        )
        # How long an outcome waits for a serve another replica may still hold (apply_outcomes).
        self._serve_grace_s = max(0.25, 5 * write_behind_s)
        self._cache: ReadCache[Any] | None = ReadCache(cache_ttl_s) if cache_ttl_s > 0 else None
        # Per shopper: what was served to them (serve time, item) since the entry was read;
        # this store's own serves are added as they are logged, so it is only re-read (for
        # other replicas' serves) after EXPOSURE_TTL_S.
        self._exposures: ReadCache[tuple[float, list[tuple[float, str]]]] | None = (
            ReadCache(EXPOSURE_TTL_S) if cache_ttl_s > 0 else None
        )
        # (tenant, user) -> experiments whose assignment was written since start.
        self._assigned: dict[tuple[str, str], set[str]] = {}

    def close(self) -> None:
        """Writes what the write-behind holds (retrying a failing database for a while), then
        releases the engine."""
        try:
            if self._queue is not None:
                self._queue.close()
        finally:
            self.engine.dispose()

    @contextmanager
    def _held(self) -> Iterator[list[_Served | _Assigned]]:
        """What the write-behind holds, with its writing held off meanwhile."""
        if self._queue is None:
            yield []
            return
        with self._queue.held() as pending:
            yield pending

    def flush(self) -> None:
        """Writes what the write-behind holds (a no-op without one)."""
        if self._queue is not None:
            self._queue.flush()

    def _insert(self) -> Any:
        return postgresql.insert if self._dialect == "postgresql" else sqlite.insert

    def _write_queued(self, entries: list[_Served | _Assigned]) -> None:
        """One transaction for everything queued: the serve log by tenant, then assignments."""
        with self._sessions.begin() as session:
            for entry in entries:
                if isinstance(entry, _Served):
                    self._log_served(session, entry.tenant, entry.rows)
            assignments = [e.__dict__ for e in entries if isinstance(e, _Assigned)]
            if assignments:
                session.execute(
                    self._insert()(schema.assignments).on_conflict_do_nothing(),
                    [
                        {
                            "tenant_id": a["tenant"],
                            "experiment_id": a["experiment_id"],
                            "user_id": a["user_id"],
                            "arm_id": a["arm_id"],
                            "assign_time": a["assign_time"],
                        }
                        for a in assignments
                    ],
                )

    # ---- experiments ---------------------------------------------------------------------

    def create_experiment(
        self, tenant: str, experiment_id: str, display_name: str, arms: Sequence[ArmSpec]
    ) -> ExperimentRecord:
        """Creating the same experiment again returns it; other arms under the same id conflict."""
        e = schema.experiments
        with self._sessions.begin() as session:
            row = session.execute(
                select(e).where(e.c.tenant_id == tenant, e.c.experiment_id == experiment_id)
            ).first()
            if row is not None:
                found = _experiment(row)
                if found.arms != tuple(arms) or found.display_name != display_name:
                    raise AlreadyExists("experiment", experiment_id)
                return found
            now = datetime.now(UTC)
            values = dict(
                tenant_id=tenant,
                experiment_id=experiment_id,
                display_name=display_name,
                # `arms` keeps the shape older replicas parse; pinned versions go apart.
                arms=[
                    {"arm_id": a.arm_id, "strategy": a.strategy, "traffic_weight": a.traffic_weight}
                    for a in arms
                ],
                arm_versions={a.arm_id: a.versions for a in arms if a.versions},
                state=RUNNING,
                create_time=now,
                stop_time=None,
            )
            session.execute(e.insert().values(**values))
        if self._cache is not None:
            self._cache.drop(("running", tenant))
        return _experiment(values)

    def get_experiment(self, tenant: str, experiment_id: str) -> ExperimentRecord:
        e = schema.experiments
        with self._sessions() as session:
            row = session.execute(
                select(e).where(e.c.tenant_id == tenant, e.c.experiment_id == experiment_id)
            ).first()
        if row is None:
            raise NotFound("experiment", experiment_id)
        return _experiment(row)

    def list_experiments(self, tenant: str, after: str, limit: int) -> list[ExperimentRecord]:
        e = schema.experiments
        with self._sessions() as session:
            rows = session.execute(
                select(e)
                .where(e.c.tenant_id == tenant, e.c.experiment_id > after)
                .order_by(e.c.experiment_id)
                .limit(limit)
            )
            return [_experiment(r) for r in rows]

    def running_experiments(self, tenant: str) -> list[ExperimentRecord]:
        e = schema.experiments
        key = ("running", tenant)
        if self._cache is not None:
            hit, value = self._cache.get(key)
            if hit and value is not None:
                return list(value)
        generation = self._cache.generation() if self._cache is not None else 0
        with self._sessions() as session:
            rows = session.execute(
                select(e)
                .where(e.c.tenant_id == tenant, e.c.state == RUNNING)
                .order_by(e.c.experiment_id)
            )
            found = [_experiment(r) for r in rows]
        if self._cache is not None:
            self._cache.put(key, found, generation)
        return list(found)

    def stop_experiment(self, tenant: str, experiment_id: str) -> ExperimentRecord:
        e = schema.experiments
        current = self.get_experiment(tenant, experiment_id)
        if current.state == STOPPED:
            return current
        with self._sessions.begin() as session:
            session.execute(
                e.update()
                .where(e.c.tenant_id == tenant, e.c.experiment_id == experiment_id)
                .values(state=STOPPED, stop_time=datetime.now(UTC))
            )
        if self._cache is not None:
            self._cache.drop(("running", tenant))
        return self.get_experiment(tenant, experiment_id)

    def remember_assignment(
        self, tenant: str, experiment_id: str, user_id: str, arm_id: str, now: float
    ) -> None:
        """Keeps the first assignment of a user to an experiment (assignment is a pure hash,
        so later ones are the same); each is written once per process."""
        if experiment_id in self._assigned.get((tenant, user_id), ()):
            return
        if self._queue is not None:
            self._queue.add([_Assigned(tenant, experiment_id, user_id, arm_id, now)])
        else:
            stmt = (
                self._insert()(schema.assignments)
                .values(
                    tenant_id=tenant,
                    experiment_id=experiment_id,
                    user_id=user_id,
                    arm_id=arm_id,
                    assign_time=now,
                )
                .on_conflict_do_nothing()
            )
            with self._sessions.begin() as session:
                session.execute(stmt)
        if len(self._assigned) >= ASSIGNED_MAX:
            self._assigned.clear()
        self._assigned.setdefault((tenant, user_id), set()).add(experiment_id)

    # ---- serving and outcomes ------------------------------------------------------------

    def log_served(self, tenant: str, rows: Sequence[ServedRow]) -> None:
        """Queued for the write-behind when there is one, else written now."""
        if not rows:
            return
        if self._exposures is not None:
            for r in rows:
                _, entry = self._exposures.get((tenant, r.user_id))
                if entry is not None:
                    entry[1].append((r.serve_time, r.item_id))
        if self._queue is not None:
            self._queue.add([_Served(tenant, rows)])
            return
        with self._sessions.begin() as session:
            self._log_served(session, tenant, rows)

    def _log_served(self, session: Session, tenant: str, rows: Sequence[ServedRow]) -> None:
        """The request-level part of the features (profile, context) is stored once per
        request in served_requests; each row keeps only its own part (the candidate)."""
        requests: dict[str, dict[str, Any]] = {}
        values = []
        for r in rows:
            shared = {k: v for k, v in r.features.items() if k in REQUEST_FEATURES}
            if shared:
                requests.setdefault(
                    r.request_id,
                    {
                        "tenant_id": tenant,
                        "request_id": r.request_id,
                        "user_id": r.user_id,
                        "serve_time": r.serve_time,
                        "features": shared,
                    },
                )
            own = {k: v for k, v in r.features.items() if k not in REQUEST_FEATURES}
            values.append({"tenant_id": tenant, **r.__dict__, "features": own})
        if requests:
            session.execute(
                self._insert()(schema.served_requests).on_conflict_do_nothing(),
                list(requests.values()),
            )
        session.execute(schema.served.insert(), values)

    def bandit_stats(
        self, tenant: str, creative_ids: Sequence[str], segment: str
    ) -> dict[str, LiftStats]:
        """What was observed per creative for shoppers of `segment`."""
        b = schema.bandit_stats
        return self._lift_stats(
            ("stats", tenant, segment), set(creative_ids), b, b.c.creative_id, tenant, segment
        )

    def _lift_stats(
        self,
        prefix: tuple[str, ...],
        keys: set[str],
        table: Table,
        key_column: Any,
        tenant: str,
        segment: str,
    ) -> dict[str, LiftStats]:
        """Counts per key of `table` for (tenant, segment): cached ones, the rest in one query."""
        found, missing = self._cached(prefix, keys)
        if missing:
            generation = self._cache.generation() if self._cache is not None else 0
            with self._sessions() as session:
                rows = session.execute(
                    select(
                        key_column, table.c.impressions, table.c.clicks, table.c.expected_clicks
                    ).where(
                        table.c.tenant_id == tenant,
                        table.c.segment == segment,
                        key_column.in_(sorted(missing)),
                    )
                )
                fresh = {key: LiftStats(n, c, e) for key, n, c, e in rows}
            self._remember(prefix, missing, fresh, generation)
            found.update(fresh)
        return found

    def _cached(
        self, prefix: tuple[str, ...], keys: set[str]
    ) -> tuple[dict[str, LiftStats], set[str]]:
        """Cached statistics for `keys` (None = cached as never observed) and the keys to
        read from the database."""
        if self._cache is None:
            return {}, keys
        found: dict[str, LiftStats] = {}
        missing = set()
        for key in keys:
            hit, value = self._cache.get((*prefix, key))
            if not hit:
                missing.add(key)
            elif value is not None:
                found[key] = value
        return found, missing

    def _remember(
        self,
        prefix: tuple[str, ...],
        asked: set[str],
        fresh: dict[str, LiftStats],
        generation: int,
    ) -> None:
        if self._cache is not None:
            for key in asked:
                if not self._cache.put((*prefix, key), fresh.get(key), generation):
                    return  # a write raced this read: keep none of it

    def selection_state(
        self,
        tenant: str,
        segment: str,
        creative_ids: Sequence[str],
        angles: Sequence[str],
        user_id: str,
        item_ids: Sequence[str],
        since: float,
    ) -> SelectionState:
        """What one Recommend's choices read, in one call off the event loop: the bandit's
        statistics per creative and per angle, and how often each candidate was already
        served to this shopper since `since`."""
        return SelectionState(
            self.bandit_stats(tenant, creative_ids, segment),
            self.bandit_groups(tenant, segment, angles),
            self.recent_exposures(tenant, user_id, item_ids, since),
        )

    def recent_exposures(
        self, tenant: str, user_id: str, item_ids: Sequence[str], since: float
    ) -> dict[str, int]:
        """Times each of `item_ids` was served to the user since `since` (serve log, and what
        the write-behind has not written yet)."""
        s = schema.served
        if not item_ids or not user_id:
            return {}
        wanted = set(item_ids)
        counts: Counter[str] = Counter()
        if self._exposures is not None:
            _, entry = self._exposures.get((tenant, user_id))
            if entry is None or since < entry[0]:
                generation = self._exposures.generation()
                with self._held() as pending, self._sessions() as session:
                    seen = [
                        (float(t), item_id)
                        for t, item_id in session.execute(
                            select(s.c.serve_time, s.c.item_id).where(
                                s.c.tenant_id == tenant,
                                s.c.user_id == user_id,
                                s.c.serve_time >= since,
                            )
                        )
                    ]
                seen += [
                    (r.serve_time, r.item_id)
                    for e in pending
                    if isinstance(e, _Served) and e.tenant == tenant
                    for r in e.rows
                    if r.user_id == user_id and r.serve_time >= since
                ]
                entry = (since, seen)
                self._exposures.put((tenant, user_id), entry, generation)
            counts.update(item_id for t, item_id in entry[1] if t >= since and item_id in wanted)
            return dict(counts)
        if self._queue is not None:
            for queued in self._queue.pending():
                if isinstance(queued, _Served) and queued.tenant == tenant:
                    counts.update(
                        r.item_id
                        for r in queued.rows
                        if r.user_id == user_id and r.serve_time >= since and r.item_id in wanted
                    )
        with self._sessions() as session:
            rows = session.execute(
                select(s.c.item_id, func.count())
                .where(
                    s.c.tenant_id == tenant,
                    s.c.user_id == user_id,
                    s.c.serve_time >= since,
                    s.c.item_id.in_(sorted(wanted)),
                )
                .group_by(s.c.item_id)
            )
            for item_id, n in rows:
                counts[item_id] += int(n)
        return dict(counts)

    def bandit_groups(
        self, tenant: str, segment: str, angles: Sequence[str]
    ) -> dict[str, LiftStats]:
        """What was observed per copy angle for shoppers of `segment`, pooled over creatives."""
        g = schema.bandit_groups
        wanted = {a for a in angles if a}
        return self._lift_stats(("groups", tenant, segment), wanted, g, g.c.angle, tenant, segment)

    @property
    def serve_grace_s(self) -> float:
        """How long an outcome for an impression not found should wait before it is rejected:
        with the write-behind, another replica may not have written a serve it answered a
        moment ago (a few of its flush intervals); 0 without one."""
        return self._serve_grace_s if self._queue is not None else 0.0

    def apply_outcomes(
        self,
        tenant: str,
        events: Sequence[OutcomeIn],
        forward: Callable[[Sequence[AppliedOutcome]], Sequence[outbox.OutboxMessage]] | None = None,
    ) -> tuple[list[AppliedOutcome], int, list[tuple[OutcomeIn, str]]]:
        """Stores new outcomes, updates bandit statistics and queues what `forward` makes of
        the applied outcomes in the outbox, all in one transaction.
        Returns (applied, duplicate count, rejected with reasons; an unknown impression's
        reason starts with UNKNOWN_IMPRESSION, see `serve_grace_s`)."""
        self.flush()  # an impression this replica served a moment ago may still be queued
        return self._apply_outcomes(tenant, events, forward)

    def _apply_outcomes(
        self,
        tenant: str,
        events: Sequence[OutcomeIn],
        forward: Callable[[Sequence[AppliedOutcome]], Sequence[outbox.OutboxMessage]] | None,
    ) -> tuple[list[AppliedOutcome], int, list[tuple[OutcomeIn, str]]]:
        o, s, sr = schema.outcomes, schema.served, schema.served_requests
        applied: list[AppliedOutcome] = []
        rejected: list[tuple[OutcomeIn, str]] = []
        duplicate = 0
        with self._sessions.begin() as session:
            known = set(
                session.scalars(
                    select(o.c.event_id).where(
                        o.c.tenant_id == tenant, o.c.event_id.in_([e.event_id for e in events])
                    )
                )
            )
            served_rows = {
                r.impression_id: _served(r)
                for r in session.execute(
                    select(s, sr.c.features.label("request_features"))
                    .select_from(
                        s.outerjoin(
                            sr,
                            and_(
                                sr.c.tenant_id == s.c.tenant_id,
                                sr.c.request_id == s.c.request_id,
                            ),
                        )
                    )
                    .where(
                        s.c.tenant_id == tenant,
                        s.c.impression_id.in_({e.impression_id for e in events}),
                    )
                )
            }
            seen_types = {
                (r.impression_id, r.type)
                for r in session.execute(
                    select(o.c.impression_id, o.c.type).where(
                        o.c.tenant_id == tenant, o.c.impression_id.in_(list(served_rows))
                    )
                )
            }
            bumps: dict[tuple[str, str, str], Bump] = {}
            items: dict[str, str] = {}  # creative id -> the item it was written for
            for e in events:
                if e.event_id in known:
                    duplicate += 1
                    continue
                row = served_rows.get(e.impression_id)
                if row is None:
                    rejected.append((e, f"{UNKNOWN_IMPRESSION} {e.impression_id!r}"))
                    continue
                if e.request_id and e.request_id != row.request_id:
                    rejected.append((e, "request_id: does not match the impression's request"))
                    continue
                known.add(e.event_id)
                first = (e.impression_id, e.type) not in seen_types
                seen_types.add((e.impression_id, e.type))
                session.execute(
                    o.insert().values(
                        tenant_id=tenant,
                        event_id=e.event_id,
                        impression_id=e.impression_id,
                        type=e.type,
                        value=e.value,
                        event_time=e.event_time,
                    )
                )
                if first and e.type in ("impression", "click"):
                    bump = bumps.setdefault((row.creative_id, row.segment, row.angle), Bump())
                    items[row.creative_id] = row.item_id
                    if e.type == "impression":
                        bump.impressions += 1
                        bump.expected_clicks += row.p_ctr
                    else:
                        bump.clicks += 1
                applied.append(AppliedOutcome(e, row, first))
            self._bump_bandit(session, tenant, bumps, items)
            if forward is not None and applied:
                outbox.enqueue(session, tenant, forward(applied))
        if self._cache is not None:
            self._cache.drop(
                *[("stats", tenant, segment, creative_id) for creative_id, segment, _ in bumps],
                *[("groups", tenant, segment, angle) for _, segment, angle in bumps],
            )
        return applied, duplicate, rejected

    def delete_user(
        self, tenant: str, user_id: str, forward: Sequence[outbox.OutboxMessage]
    ) -> UserDeletion:
        """Erases the user's serve log, outcomes, assignments and request snapshots, drops
        feedback about them still queued, and queues `forward` (the deletion for the other
        services), all in one transaction. Bandit statistics keep only anonymous counts."""
        self.flush()  # so what is queued for the user is deleted too
        self._assigned.pop((tenant, user_id), None)
        if self._exposures is not None:
            self._exposures.drop((tenant, user_id))
        s, o, a, sr = schema.served, schema.outcomes, schema.assignments, schema.served_requests
        with self._sessions.begin() as session:
            impressions = list(
                session.scalars(
                    select(s.c.impression_id).where(s.c.tenant_id == tenant, s.c.user_id == user_id)
                )
            )
            outcomes = 0
            for start in range(0, len(impressions), 500):
                outcomes += _count(
                    session.execute(
                        delete(o).where(
                            o.c.tenant_id == tenant,
                            o.c.impression_id.in_(impressions[start : start + 500]),
                        )
                    )
                )
            served = _count(
                session.execute(delete(s).where(s.c.tenant_id == tenant, s.c.user_id == user_id))
            )
            session.execute(delete(sr).where(sr.c.tenant_id == tenant, sr.c.user_id == user_id))
            assigned = _count(
                session.execute(delete(a).where(a.c.tenant_id == tenant, a.c.user_id == user_id))
            )
            dropped = outbox.drop_for_user(session, tenant, user_id)
            outbox.enqueue(session, tenant, forward)
        return UserDeletion(served, outcomes, assigned, dropped, len(forward))

    def _bump_bandit(
        self,
        session: Session,
        tenant: str,
        bumps: dict[tuple[str, str, str], Bump],
        items: dict[str, str],
    ) -> None:
        """Adds the new counts per (creative, segment) and per (segment, angle), in a stable
        key order so concurrent transactions lock rows in the same order. A creative's row
        also records its item and angle (`items`: creative id -> item id)."""
        groups: dict[tuple[str, str], Bump] = {}
        for (creative_id, segment, angle), bump in sorted(bumps.items()):
            key = {"tenant_id": tenant, "creative_id": creative_id, "segment": segment}
            about = {"item_id": items.get(creative_id, ""), "angle": angle}
            self._add_counts(session, schema.bandit_stats, key, bump, about)
            if angle:
                groups.setdefault((segment, angle), Bump()).add(bump)
        for (segment, angle), bump in sorted(groups.items()):
            key = {"tenant_id": tenant, "segment": segment, "angle": angle}
            self._add_counts(session, schema.bandit_groups, key, bump)

    def _add_counts(
        self,
        session: Session,
        table: Table,
        key: dict[str, str],
        bump: Bump,
        about: dict[str, str] | None = None,
    ) -> None:
        """Upsert: the row for `key` gets `bump`'s counts added (created with them if new);
        `about` (descriptive columns) is written as given."""
        insert = self._insert()
        counts = {
            "impressions": bump.impressions,
            "clicks": bump.clicks,
            "expected_clicks": bump.expected_clicks,
        }
        about = about or {}
        stmt = insert(table).values(**key, **counts, **about)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=list(key),
                set_={
                    **{name: table.c[name] + value for name, value in counts.items()},
                    **about,
                },
            )
        )

    # ---- creative performance ------------------------------------------------------------

    def creative_performance(
        self, tenant: str, query: PerformanceQuery, limit: int
    ) -> list[CreativePerformance]:
        """Pool creatives' bandit statistics per segment, best shrunk lift first (ties by
        creative id, then segment), starting after `query.after`; at most `limit` rows.
        The lift is computed here, in SQL, so the page key compares exactly with the next
        page's rows. Rows without expected clicks (counted before they were recorded) have no
        lift and are left out. Reads no serve log, so nothing queued needs writing first."""
        b = schema.bandit_stats
        prior = literal(LIFT_PRIOR_CLICKS, Float)
        lift = ((cast(b.c.clicks, Float) + prior) / (b.c.expected_clicks + prior)).label("lift")
        where = [
            b.c.tenant_id == tenant,
            b.c.impressions >= query.min_impressions,
            b.c.expected_clicks > 0,
            *[~b.c.creative_id.startswith(p) for p in SYNTHETIC_PREFIXES],
        ]
        if query.segment:
            where.append(b.c.segment == query.segment)
        after = query.after
        if after is not None:
            where.append(
                or_(
                    lift < after.lift,
                    and_(lift == after.lift, b.c.creative_id > after.creative_id),
                    and_(
                        lift == after.lift,
                        b.c.creative_id == after.creative_id,
                        b.c.segment > after.segment,
                    ),
                )
            )
        stmt = (
            select(
                b.c.creative_id,
                b.c.item_id,
                b.c.segment,
                b.c.angle,
                b.c.impressions,
                b.c.clicks,
                b.c.expected_clicks,
                lift,
            )
            .where(*where)
            .order_by(lift.desc(), b.c.creative_id, b.c.segment)
            .limit(limit)
        )
        with self._sessions() as session:
            return [
                CreativePerformance(
                    creative_id=r.creative_id,
                    item_id=r.item_id,
                    segment=r.segment,
                    angle=r.angle,
                    impressions=int(r.impressions),
                    clicks=int(r.clicks),
                    expected_clicks=float(r.expected_clicks),
                    lift=float(r.lift),
                )
                for r in session.execute(stmt)
            ]

    # ---- experiment metrics --------------------------------------------------------------

    def arm_counts(self, tenant: str, experiment_id: str) -> dict[str, ArmCounts]:
        self.flush()
        a, s, o = schema.assignments, schema.served, schema.outcomes
        with self._sessions() as session:
            users: dict[str, int] = dict(
                session.execute(
                    select(a.c.arm_id, func.count())
                    .where(a.c.tenant_id == tenant, a.c.experiment_id == experiment_id)
                    .group_by(a.c.arm_id)
                ).all()
            )
            rows = session.execute(
                select(
                    s.c.arm_id,
                    s.c.user_id,
                    o.c.type,
                    func.count(func.distinct(o.c.impression_id)),
                    func.sum(o.c.value),
                )
                .select_from(
                    o.join(
                        s,
                        and_(
                            s.c.tenant_id == o.c.tenant_id, s.c.impression_id == o.c.impression_id
                        ),
                    )
                )
                .where(o.c.tenant_id == tenant, s.c.experiment_id == experiment_id)
                .group_by(s.c.arm_id, s.c.user_id, o.c.type)
            ).all()
        # Per arm and user: the user is the unit of randomisation, so the report's intervals
        # need each user's impressions and clicks, not only the arm's totals.
        per_user: dict[str, dict[str, dict[str, tuple[int, float]]]] = {}
        for arm_id, user_id, kind, n, total in rows:
            per_user.setdefault(arm_id, {}).setdefault(user_id, {})[kind] = (
                int(n),
                float(total or 0.0),
            )
        arms = set(users) | set(per_user)
        return {arm: _arm_counts(arm, users.get(arm, 0), per_user.get(arm, {})) for arm in arms}

    def slice_counts(self, tenant: str, experiment_id: str) -> list[SliceCounts]:
        """Impressions, clicks and purchases per (arm, shopper segment, copy angle)."""
        self.flush()
        s, o = schema.served, schema.outcomes
        with self._sessions() as session:
            rows = session.execute(
                select(
                    s.c.arm_id,
                    s.c.segment,
                    s.c.angle,
                    o.c.type,
                    func.count(func.distinct(o.c.impression_id)),
                )
                .select_from(
                    o.join(
                        s,
                        and_(
                            s.c.tenant_id == o.c.tenant_id, s.c.impression_id == o.c.impression_id
                        ),
                    )
                )
                .where(
                    o.c.tenant_id == tenant,
                    s.c.experiment_id == experiment_id,
                    o.c.type.in_(["impression", "click", "purchase"]),
                )
                .group_by(s.c.arm_id, s.c.segment, s.c.angle, o.c.type)
            ).all()
        cells: dict[tuple[str, str, str], dict[str, int]] = {}
        for arm_id, segment, angle, kind, n in rows:
            cells.setdefault((arm_id, segment, angle), {})[kind] = int(n)
        return [
            SliceCounts(
                arm_id=arm,
                segment=segment,
                angle=angle,
                impressions=c.get("impression", 0),
                clicks=c.get("click", 0),
                purchases=c.get("purchase", 0),
            )
            for (arm, segment, angle), c in sorted(cells.items())
        ]

    def timeline(self, tenant: str, experiment_id: str) -> list[tuple[float, str, str]]:
        """(event time, arm, type) of impressions and clicks, for charts over time."""
        self.flush()
        s, o = schema.served, schema.outcomes
        with self._sessions() as session:
            return [
                tuple(r)
                for r in session.execute(
                    select(o.c.event_time, s.c.arm_id, o.c.type)
                    .select_from(
                        o.join(
                            s,
                            and_(
                                s.c.tenant_id == o.c.tenant_id,
                                s.c.impression_id == o.c.impression_id,
                            ),
                        )
                    )
                    .where(
                        o.c.tenant_id == tenant,
                        s.c.experiment_id == experiment_id,
                        o.c.type.in_(["impression", "click"]),
                    )
                    .order_by(o.c.event_time)
                )
            ]

    def first_impression_time(self, tenant: str, since: float) -> float | None:
        o = schema.outcomes
        with self._sessions() as session:
            first = session.scalar(
                select(func.min(o.c.event_time)).where(
                    o.c.tenant_id == tenant, o.c.type == "impression", o.c.event_time >= since
                )
            )
        return None if first is None else float(first)

    def outcome_count(self, tenant: str) -> int:
        o = schema.outcomes
        with self._sessions() as session:
            return int(
                session.scalar(select(func.count()).select_from(o).where(o.c.tenant_id == tenant))
                or 0
            )


def _experiment(row: Any) -> ExperimentRecord:
    data = row if isinstance(row, dict) else row._asdict()
    versions = data.get("arm_versions") or {}
    return ExperimentRecord(
        experiment_id=data["experiment_id"],
        display_name=data["display_name"],
        arms=tuple(
            ArmSpec(
                a["arm_id"],
                a["strategy"],
                a["traffic_weight"],
                versions.get(a["arm_id"], {}).get("copywriter_version", ""),
                versions.get(a["arm_id"], {}).get("prompt_template_version", ""),
            )
            for a in data["arms"]
        ),
        state=data["state"],
        create_time=data["create_time"],
        stop_time=data["stop_time"],
    )


def _arm_counts(
    arm_id: str, assigned: int, by_user: dict[str, dict[str, tuple[int, float]]]
) -> ArmCounts:
    """An arm's totals plus the per-user sums its clustered intervals need."""
    impressions = clicks = purchases = 0
    revenue = impressions_sq = clicks_sq = cross = 0.0
    shown = 0
    for kinds in by_user.values():
        n = kinds.get("impression", (0, 0.0))[0]
        c = kinds.get("click", (0, 0.0))[0]
        impressions += n
        clicks += c
        purchases += kinds.get("purchase", (0, 0.0))[0]
        revenue += kinds.get("purchase", (0, 0.0))[1]
        if n:
            shown += 1
            impressions_sq += n * n
            clicks_sq += c * c
            cross += n * c
    return ArmCounts(
        arm_id=arm_id,
        users=int(assigned),
        impressions=impressions,
        clicks=clicks,
        purchases=purchases,
        revenue=revenue,
        shown_users=shown,
        impressions_sq=impressions_sq,
        clicks_sq=clicks_sq,
        impressions_clicks=cross,
    )


def _served(row: Any) -> ServedRow:
    data = row._asdict()
    # Rows logged before served_requests existed carry the whole snapshot themselves.
    data["features"] = {**(data.get("request_features") or {}), **data["features"]}
    return ServedRow(**{f: data[f] for f in ServedRow.__dataclass_fields__})


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
