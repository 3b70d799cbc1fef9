"""ProfileService persistence. Every method takes the tenant and touches only its rows; every
write runs in one transaction, so a failed call leaves nothing half-written."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from copyloop.common import idempotency
from copyloop.common.tombstones import deleted_users, user_hash
from copyloop.profile import schema
from copyloop.profile.catalog import ItemData
from copyloop.profile.profiles import (
    EVENT_WEIGHTS,
    EventIn,
    ItemFacts,
    ProfileState,
    apply_events,
    decay_factor,
)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
MAX_LISTED_REJECTIONS = 1000


@dataclass(frozen=True)
class StoredItem:
    data: ItemData
    version: int
    update_time: datetime


@dataclass(frozen=True)
class WriteResult:
    item_id: str
    version: int
    outcome: str


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str
    field: str
    reason: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[Rejection] | None = None

    def add(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        mine = self.rejections or []
        room = MAX_LISTED_REJECTIONS - len(mine)
        self.rejections = mine + (other.rejections or [])[: max(0, room)]

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if self.rejections is None:
            self.rejections = []
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(rejection)


@dataclass(frozen=True)
class ItemQuery:
    categories: tuple[str, ...] = ()
    min_price: float = 0.0
    max_price: float = 0.0
    in_stock_only: bool = False
    exclude_item_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


class ProfileStore:
    def __init__(self, engine: Engine, half_life_s: float) -> None:
        self.engine = engine
        self.half_life_s = half_life_s
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        # One writer per process for event ingest: profiles are read-modify-write.
        self._ingest_lock = threading.Lock()
        self._insert_events_sql = _insert_sql(engine, schema.events, EVENT_COLUMNS)
        self._copy_events_sql: str | None = None
        if self._dialect == "postgresql" and engine.dialect.driver == "psycopg":
            quote = engine.dialect.identifier_preparer.quote
            self._copy_events_sql = (
                f"COPY {quote(schema.events.name)} ({', '.join(map(quote, EVENT_COLUMNS))}) "
                "FROM STDIN"
            )
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._stored_ids_sql = (
            f"SELECT event_id FROM {schema.events.name} WHERE tenant_id = {mark} AND event_id "
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # ---- catalog -------------------------------------------------------------------------

    def upsert_items(
        self, tenant: str, items: Sequence[ItemData], idempotency_key: str
    ) -> list[WriteResult]:
        request_hash = idempotency.fingerprint([asdict(i) for i in items])
        with self.transaction() as session:
            return idempotency.run_idempotent(
                session,
                schema.idempotency_records,
                tenant,
                "UpsertItems",
                idempotency_key,
                request_hash,
                write=lambda: self._upsert_items(session, tenant, items),
                encode=lambda rs: json.dumps([asdict(r) for r in rs]).encode(),
                decode=lambda raw: [WriteResult(**r) for r in json.loads(raw)],
            )

    def _upsert_items(
        self, session: Session, tenant: str, items: Sequence[ItemData]
    ) -> list[WriteResult]:
        t = schema.items
        ids = [i.item_id for i in items]
        existing = {
            row.item_id: (row.version, row.content_hash)
            for row in session.execute(
                self._locking(
                    select(t.c.item_id, t.c.version, t.c.content_hash).where(
                        t.c.tenant_id == tenant, t.c.item_id.in_(ids)
                    )
                )
            )
        }
        now = datetime.now(UTC)
        results: list[WriteResult] = []
        for item in items:
            digest = item.content_hash()
            values = _item_row(item, digest, now)
            if item.item_id not in existing:
                session.execute(t.insert().values(tenant_id=tenant, version=1, **values))
                results.append(WriteResult(item.item_id, 1, CREATED))
                continue
            version, old_digest = existing[item.item_id]
            if old_digest == digest:
                results.append(WriteResult(item.item_id, version, UNCHANGED))
                continue
            session.execute(
                t.update()
                .where(t.c.tenant_id == tenant, t.c.item_id == item.item_id)
                .values(version=version + 1, **values)
            )
            results.append(WriteResult(item.item_id, version + 1, UPDATED))
        return results

    def get_items(self, tenant: str, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        t = schema.items
        with self.transaction() as session:
            rows = session.execute(
                select(t).where(t.c.tenant_id == tenant, t.c.item_id.in_(list(item_ids)))
            )
            return {row.item_id: _stored_item(row) for row in rows}

    def list_items(self, tenant: str, query: ItemQuery, after: str, limit: int) -> list[StoredItem]:
        """Ordered by item id; `after` is the last id of the previous page."""
        t = schema.items
        stmt = select(t).where(t.c.tenant_id == tenant, t.c.item_id > after)
        stmt = self._filtered(stmt, query).order_by(t.c.item_id)
        found: list[StoredItem] = []
        with self.transaction() as session:
            # Category and tag filters are applied in Python (JSON columns); fetch in chunks.
            offset = 0
            while len(found) < limit:
                chunk = list(session.execute(stmt.limit(limit * 2).offset(offset)))
                if not chunk:
                    break
                offset += len(chunk)
                found.extend(s for s in map(_stored_item, chunk) if _matches(s.data, query))
        return found[:limit]

    def _filtered(self, stmt: Any, query: ItemQuery) -> Any:
        t = schema.items
        if query.in_stock_only:
            stmt = stmt.where(t.c.stock > 0)
        if query.min_price:
            stmt = stmt.where(t.c.price >= query.min_price)
        if query.max_price:
            stmt = stmt.where(t.c.price <= query.max_price)
        if query.exclude_item_ids:
            stmt = stmt.where(t.c.item_id.not_in(list(query.exclude_item_ids)))
        return stmt

    # ---- events & profiles ---------------------------------------------------------------

    def ingest(self, tenant: str, events: Sequence[tuple[int, EventIn]]) -> IngestResult:
        """Applies a batch atomically: new events are stored and folded into profiles and item
        popularity; replayed event ids are counted as duplicates and never applied twice."""
        with self._ingest_lock:
            for attempt in range(2):
                try:
                    with self.transaction() as session:
                        return self._ingest(session, tenant, events)
                except IntegrityError:
                    # A concurrent writer (another replica) stored some of these ids first:
                    # the retry sees them and counts them as duplicates.
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def _ingest(
        self, session: Session, tenant: str, events: Sequence[tuple[int, EventIn]]
    ) -> IngestResult:
        result = IngestResult()
        seen: set[str] = set()
        fresh: list[tuple[int, EventIn]] = []
        for index, event in events:
            if event.event_id in seen:
                result.duplicate += 1
            else:
                seen.add(event.event_id)
                fresh.append((index, event))
        stored = self._stored_event_ids(session, tenant, [ev.event_id for _, ev in fresh])
        item_ids = {ev.item_id for _, ev in fresh if ev.item_id}
        facts = self._item_facts(session, tenant, item_ids)
        deleted = deleted_users(
            session, schema.user_tombstones, tenant, {ev.user_id for _, ev in fresh}
        )
        to_apply: list[EventIn] = []
        for index, event in fresh:
            if event.event_id in stored:
                result.duplicate += 1
            elif deleted and event.event_time <= deleted.get(event.user_id, -math.inf):
                result.reject(
                    Rejection(index, event.event_id, "user_id", "user_id: deleted after this event")
                )
            elif event.item_id and event.item_id not in facts:
                result.reject(Rejection(index, event.event_id, "item_id", "item_id: unknown item"))
            else:
                to_apply.append(event)
        if not to_apply:
            return result
        to_apply.sort(key=lambda ev: ev.event_time)
        # One pass sorts the batch out by user (each user's events in time order, folded in
        # one go) and by item (engagement that moves popularity).
        by_user: dict[str, list[tuple[EventIn, ItemFacts | None]]] = {}
        touched: dict[str, list[EventIn]] = {}
        for event in to_apply:
            item = facts.get(event.item_id)
            by_user.setdefault(event.user_id, []).append((event, item))
            if item is not None and EVENT_WEIGHTS.get(event.type, 0.0) > 0:
                touched.setdefault(item.item_id, []).append(event)
        states = self._load_states(session, tenant, set(by_user))
        for user, user_events in by_user.items():
            apply_events(states.setdefault(user, ProfileState()), user_events, self.half_life_s)
        self._insert_events(session, tenant, to_apply)
        now = datetime.now(UTC)
        self._upsert(
            session,
            schema.profiles,
            ["tenant_id", "user_id"],
            [
                {
                    "tenant_id": tenant,
                    "user_id": user,
                    "state": state.to_json(),
                    "event_count": state.event_count,
                    "update_time": now,
                }
                for user, state in states.items()
            ],
        )
        self._bump_popularity(session, tenant, touched)
        result.accepted = len(to_apply)
        return result

    def _stored_event_ids(self, session: Session, tenant: str, ids: list[str]) -> set[str]:
        """Which of `ids` are stored already, in plain SQL: SQLAlchemy's expanding IN renders
        and binds thousands of parameters per call, which cost more than the lookups."""
        conn = session.connection()
        stored: set[str] = set()
        params: tuple[Any, ...]
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            if self._dialect == "postgresql":
                sql, params = self._stored_ids_sql + "= ANY(%s)", (tenant, chunk)
            else:
                marks = ", ".join("?" for _ in chunk)
                sql, params = self._stored_ids_sql + f"IN ({marks})", (tenant, *chunk)
            stored.update(row[0] for row in conn.exec_driver_sql(sql, params))
        return stored

    def _insert_events(self, session: Session, tenant: str, events: Sequence[EventIn]) -> None:
        """Plain tuples, not a dict per row through SQLAlchemy's per-row parameter processing
        (which cost more than the database's own work): COPY on PostgreSQL with psycopg
        (a seventh of executemany's client CPU), else one prepared INSERT over the driver's
        executemany. A stored id raises IntegrityError, which `ingest` retries as
        duplicates."""
        head = (tenant,)
        rows = [head + ev for ev in events]
        conn = session.connection()
        if self._copy_events_sql is None:
            conn.exec_driver_sql(self._insert_events_sql, rows)
            return
        import psycopg  # the driver in use (see __init__)

        try:
            driver = conn.connection.driver_connection
            assert driver is not None  # a live connection: this transaction is using it
            with driver.cursor() as cursor, cursor.copy(self._copy_events_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            # As SQLAlchemy would raise it (IntegrityError for a stored id, OperationalError
            # for a lost connection...), so callers and the error mapping see no difference.
            raise DBAPIError.instance(
                self._copy_events_sql, None, error, psycopg.Error, dialect=self.engine.dialect
            ) from error

    def _item_facts(
        self, session: Session, tenant: str, item_ids: set[str]
    ) -> dict[str, ItemFacts]:
        t = schema.items
        facts: dict[str, ItemFacts] = {}
        ids = list(item_ids)
        for start in range(0, len(ids), 5000):
            rows = session.execute(
                select(t.c.item_id, t.c.top_category, t.c.brand, t.c.price, t.c.list_price).where(
                    t.c.tenant_id == tenant, t.c.item_id.in_(ids[start : start + 5000])
                )
            )
            for r in rows:
                facts[r.item_id] = ItemFacts(
                    r.item_id, r.top_category, r.brand, r.price, r.list_price > r.price
                )
        return facts

    def _load_states(
        self, session: Session, tenant: str, users: set[str]
    ) -> dict[str, ProfileState]:
        p = schema.profiles
        states: dict[str, ProfileState] = {}
        ids = list(users)
        for start in range(0, len(ids), 5000):
            stmt = self._locking(
                select(p.c.user_id, p.c.state).where(
                    p.c.tenant_id == tenant, p.c.user_id.in_(ids[start : start + 5000])
                )
            )
            for row in session.execute(stmt):
                states[row.user_id] = ProfileState.from_json(row.state)
        return states

    def _bump_popularity(
        self, session: Session, tenant: str, touched: dict[str, list[EventIn]]
    ) -> None:
        """Folds engagement (item id -> its weighted events, in time order) into popularity."""
        s = schema.item_stats
        if not touched:
            return
        current = {
            r.item_id: (r.popularity, r.ref_time, r.purchase_count)
            for r in session.execute(
                self._locking(
                    select(s).where(s.c.tenant_id == tenant, s.c.item_id.in_(list(touched)))
                )
            )
        }
        rows = []
        for item_id, evs in touched.items():
            pop, ref, purchases = current.get(item_id, (0.0, 0.0, 0))
            for ev in evs:  # already in time order
                w = EVENT_WEIGHTS[ev.type]
                if ev.event_time >= ref:
                    pop = pop * decay_factor(ref, ev.event_time, self.half_life_s) + w
                    ref = ev.event_time
                else:
                    pop += w * decay_factor(ev.event_time, ref, self.half_life_s)
                purchases += ev.type == "purchase"
            rows.append(
                {
                    "tenant_id": tenant,
                    "item_id": item_id,
                    "popularity": pop,
                    "ref_time": ref,
                    "purchase_count": purchases,
                }
            )
        self._upsert(session, s, ["tenant_id", "item_id"], rows)

    def get_state(self, tenant: str, user_id: str) -> ProfileState | None:
        p = schema.profiles
        with self._sessions() as session:
            raw = session.scalar(
                select(p.c.state).where(p.c.tenant_id == tenant, p.c.user_id == user_id)
            )
        return ProfileState.from_json(raw) if raw is not None else None

    def delete_user(self, tenant: str, user_id: str) -> tuple[int, bool]:
        """Erases the user's events and profile (privacy request); item popularity keeps only
        anonymous aggregate counts. A tombstone (a hash of the id) refuses later events about
        what the user did before now."""
        with self._ingest_lock, self.transaction() as session:
            t, digest, now = schema.user_tombstones, user_hash(user_id), time.time()
            if not _rowcount(
                session.execute(
                    t.update()
                    .where(t.c.tenant_id == tenant, t.c.user_hash == digest)
                    .values(delete_time=now)
                )
            ):
                session.execute(
                    t.insert().values(tenant_id=tenant, user_hash=digest, delete_time=now)
                )
            deleted = _rowcount(
                session.execute(
                    delete(schema.events).where(
                        schema.events.c.tenant_id == tenant, schema.events.c.user_id == user_id
                    )
                )
            )
            profile = _rowcount(
                session.execute(
                    delete(schema.profiles).where(
                        schema.profiles.c.tenant_id == tenant, schema.profiles.c.user_id == user_id
                    )
                )
            )
        return int(deleted or 0), bool(profile)

    def count_user_events(self, tenant: str, user_id: str) -> int:
        e = schema.events
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(e)
                    .where(e.c.tenant_id == tenant, e.c.user_id == user_id)
                )
                or 0
            )

    # ---- recall --------------------------------------------------------------------------

    def recall_pool(
        self, tenant: str, query: ItemQuery, now: float
    ) -> list[tuple[StoredItem, float]]:
        """Every item passing the filter, with its popularity decayed to `now`."""
        t, s = schema.items, schema.item_stats
        stmt = (
            select(t, s.c.popularity, s.c.ref_time)
            .select_from(
                t.outerjoin(s, and_(s.c.tenant_id == t.c.tenant_id, s.c.item_id == t.c.item_id))
            )
            .where(t.c.tenant_id == tenant)
        )
        stmt = self._filtered(stmt, query)
        pool = []
        with self._sessions() as session:
            for row in session.execute(stmt):
                item = _stored_item(row)
                if not _matches(item.data, query):
                    continue
                pop = row.popularity or 0.0
                if pop and row.ref_time:
                    pop *= decay_factor(row.ref_time, now, self.half_life_s)
                pool.append((item, pop))
        return pool

    def item_categories(self, tenant: str, item_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(leaf category, brand) of the given items, for recency-of-interest matching."""
        t = schema.items
        with self._sessions() as session:
            rows = session.execute(
                select(t.c.category_path, t.c.brand).where(
                    t.c.tenant_id == tenant, t.c.item_id.in_(list(item_ids))
                )
            )
            return [((r.category_path or [""])[-1], r.brand) for r in rows]

    # ---- helpers -------------------------------------------------------------------------

    def _locking(self, stmt: Any) -> Any:
        """Row locks on PostgreSQL (several replicas); SQLite serialises writers itself."""
        return stmt.with_for_update() if self._dialect == "postgresql" else stmt

    def _upsert(
        self, session: Session, table: Any, keys: list[str], rows: list[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


# The events columns in the order `_insert_events` writes them (EventIn's fields after the
# tenant); checked against the table at import, so a new column cannot be silently skipped.
EVENT_COLUMNS = ("tenant_id", *EventIn._fields)
if set(EVENT_COLUMNS) != set(schema.events.c.keys()):
    raise RuntimeError("the events table's columns and EventIn's fields differ")


def _insert_sql(engine: Engine, table: Any, columns: Sequence[str]) -> str:
    """A plain positional INSERT in the driver's own parameter style (qmark for sqlite3,
    format for psycopg), for `exec_driver_sql` with a list of tuples."""
    quote = engine.dialect.identifier_preparer.quote
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )


def _item_row(item: ItemData, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "brand": item.brand,
        "category_path": list(item.category_path),
        "top_category": item.top_category,
        "price": item.price,
        "list_price": item.list_price,
        "currency_code": item.currency_code or "USD",
        "attributes": dict(item.attributes),
        "selling_points": list(item.selling_points),
        "tags": list(item.tags),
        "stock": item.stock,
        "content_hash": digest,
        "update_time": now,
    }


def _stored_item(row: Any) -> StoredItem:
    data = ItemData(
        item_id=row.item_id,
        title=row.title,
        brand=row.brand,
        category_path=tuple(row.category_path or ()),
        price=row.price,
        list_price=row.list_price,
        currency_code=row.currency_code,
        attributes=dict(row.attributes or {}),
        selling_points=tuple(row.selling_points or ()),
        tags=tuple(row.tags or ()),
        stock=row.stock,
    )
    update_time = row.update_time if row.update_time.tzinfo else row.update_time.replace(tzinfo=UTC)
    return StoredItem(data, row.version, update_time)


def _matches(item: ItemData, query: ItemQuery) -> bool:
    if query.categories:
        wanted = {c.lower() for c in query.categories}
        if not any(level.lower() in wanted for level in item.category_path):
            return False
    return not query.tags or set(query.tags) <= set(item.tags)


def _rowcount(result: Result[Any]) -> int:
    """Rows a DELETE touched: Session.execute is typed as returning a plain Result, but a DML
    statement's result is always a CursorResult."""
    return cast(CursorResult[Any], result).rowcount
