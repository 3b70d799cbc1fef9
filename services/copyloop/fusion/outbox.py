"""The feedback outbox and its relay: feedback is never lost when profile or prediction is down.

ReportOutcome and DeleteUser write their forwarding rows in the same transaction as the change
they forward and return after the local commit. The relay, a background task of the fusion
server, delivers the rows in order per target (impressions before their outcomes), retries with
capped exponential backoff, and deletes a row only once its target acknowledged it, so rows
survive restarts. Redelivery is harmless: each row carries the natural id its target
deduplicates on (impression id, outcome id, event id), and user deletion is idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from copyloop.common.db import BlockingRunner
from copyloop.common.observability import REGISTRY
from copyloop.fusion import schema
from copyloop.v1 import prediction_pb2, prediction_pb2_grpc, profile_pb2, profile_pb2_grpc


class Targets(Protocol):
    """The two services the relay delivers to (fusion's `Downstream` is one); a protocol, so
    the store can use this module without importing the downstream wiring."""

    @property
    def prediction(self) -> prediction_pb2_grpc.PredictionServiceStub: ...

    @property
    def profile(self) -> profile_pb2_grpc.ProfileServiceStub: ...


log = logging.getLogger("copyloop.fusion.outbox")

PREDICTION, PROFILE = "prediction", "profile"
TARGETS = (PREDICTION, PROFILE)
IMPRESSION, OUTCOME, EVENT, DELETE_USER = "impression", "outcome", "event", "delete_user"
PENDING, DEAD = "pending", "dead"
# Codes that say the row itself is wrong: retrying cannot help, so the row is set aside (kept,
# as "dead", for an operator) instead of blocking everything queued behind it.
PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

DEPTH = Gauge(
    "copyloop_fusion_outbox_depth",
    "Feedback rows waiting to be forwarded, per target.",
    ["target"],
    registry=REGISTRY,
)
OLDEST_AGE = Gauge(
    "copyloop_fusion_outbox_oldest_age_seconds",
    "Age of the oldest row waiting to be forwarded, per target (0 when none).",
    ["target"],
    registry=REGISTRY,
)
DEAD_ROWS = Gauge(
    "copyloop_fusion_outbox_dead_rows",
    "Rows their target refused as invalid, kept for an operator.",
    ["target"],
    registry=REGISTRY,
)
DELIVERED = Counter(
    "copyloop_fusion_outbox_delivered_total",
    "Outbox rows acknowledged by their target.",
    ["target", "kind"],
    registry=REGISTRY,
)
FAILURES = Counter(
    "copyloop_fusion_outbox_delivery_failures_total",
    "Delivery attempts that failed (retried later), per target and status.",
    ["target", "code"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class OutboxMessage:
    """One thing to forward: `payload` is the proto message as JSON (proto field names)."""

    target: str
    kind: str
    key: str
    user_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    tenant_id: str
    target: str
    kind: str
    key: str
    payload: dict[str, Any]


def to_payload(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def enqueue(session: Session, tenant: str, messages: Sequence[OutboxMessage]) -> None:
    """Adds rows inside the caller's transaction (so they commit or roll back with it)."""
    if messages:
        now = time.time()
        session.execute(
            schema.outbox.insert(),
            [
                {
                    "tenant_id": tenant,
                    "target": m.target,
                    "kind": m.kind,
                    "key": m.key,
                    "user_id": m.user_id,
                    "payload": m.payload,
                    "state": PENDING,
                    "attempts": 0,
                    "last_error": "",
                    "create_time": now,
                }
                for m in messages
            ],
        )


def drop_for_user(session: Session, tenant: str, user_id: str) -> int:
    """Drops everything still queued about a user (a deletion supersedes it)."""
    o = schema.outbox
    result = session.execute(delete(o).where(o.c.tenant_id == tenant, o.c.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    oldest_age_s: float
    dead: int


class OutboxStore:
    """The relay's view of the outbox table."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def due(self, target: str, limit: int) -> list[OutboxRow]:
        o = schema.outbox
        with self._sessions() as session:
            rows = session.execute(
                select(o.c.seq, o.c.tenant_id, o.c.target, o.c.kind, o.c.key, o.c.payload)
                .where(o.c.target == target, o.c.state == PENDING)
                .order_by(o.c.seq)
                .limit(limit)
            )
            return [OutboxRow(*r) for r in rows]

    def ack(self, seqs: Sequence[int]) -> None:
        o = schema.outbox
        with self._sessions.begin() as session:
            session.execute(delete(o).where(o.c.seq.in_(list(seqs))))

    def failed(self, seqs: Sequence[int], error: str, dead: bool) -> None:
        o = schema.outbox
        values: dict[str, Any] = {"attempts": o.c.attempts + 1, "last_error": error[:256]}
        if dead:
            values["state"] = DEAD
        with self._sessions.begin() as session:
            session.execute(update(o).where(o.c.seq.in_(list(seqs))).values(**values))

    def stats(self, now: float) -> dict[str, OutboxStats]:
        o = schema.outbox
        with self._sessions() as session:
            rows = session.execute(
                select(o.c.target, o.c.state, func.count(), func.min(o.c.create_time)).group_by(
                    o.c.target, o.c.state
                )
            ).all()
        found: dict[str, dict[str, tuple[int, float | None]]] = {}
        for target, state, count, oldest in rows:
            found.setdefault(target, {})[state] = (int(count), oldest)
        out = {}
        for target in TARGETS:
            depth, oldest = found.get(target, {}).get(PENDING, (0, None))
            dead = found.get(target, {}).get(DEAD, (0, None))[0]
            out[target] = OutboxStats(depth, max(0.0, now - oldest) if oldest else 0.0, dead)
        return out

    def pending(self, tenant: str | None = None, target: str | None = None) -> int:
        o = schema.outbox
        stmt = select(func.count()).select_from(o).where(o.c.state == PENDING)
        if tenant is not None:
            stmt = stmt.where(o.c.tenant_id == tenant)
        if target is not None:
            stmt = stmt.where(o.c.target == target)
        with self._sessions() as session:
            return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class RelayConfig:
    batch_size: int = 500
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    poll_s: float = 5.0  # a safety net: new rows wake the relay at once
    call_timeout_s: float = 5.0


class Relay:
    """Delivers outbox rows; one background task per fusion server."""

    def __init__(
        self,
        store: OutboxStore,
        downstream: Targets,
        runner: BlockingRunner,
        tenant_keys: dict[str, str],
        config: RelayConfig,
    ) -> None:
        self.store = store
        self.down = downstream
        self.runner = runner
        self.config = config
        # The API keys are shared by all services: the relay calls as the tenant that wrote the
        # row, with that tenant's key from the configuration (no credential is ever stored).
        self._keys: dict[str, str] = {}
        for key, tenant in tenant_keys.items():
            self._keys.setdefault(tenant, key)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = dict.fromkeys(TARGETS, 0)
        self._retry_at = dict.fromkeys(TARGETS, 0.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fusion-outbox-relay")

    def wake(self) -> None:
        """New rows were committed: deliver now rather than at the next poll."""
        self._wake.set()

    async def settle(
        self, tenant: str | None = None, target: str | None = None, timeout_s: float = 10.0
    ) -> bool:
        """Waits (up to `timeout_s`) until nothing is queued for `tenant` and `target` (all when
        None): e.g. so that a retrain sees the outcomes reported just before it."""
        deadline = time.monotonic() + timeout_s
        while await self.runner.run(self.store.pending, tenant, target):
            if time.monotonic() >= deadline:
                return False
            self.wake()
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        """Stops after the batch in flight; undelivered rows stay for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.config.call_timeout_s + 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await asyncio.gather(*(self._drain(t) for t in TARGETS))
                await self._record_stats()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database itself is unreachable: everything stays queued; try again later.
                log.warning("outbox relay round failed", exc_info=True)
            now = time.monotonic()
            waits = [max(0.0, at - now) for at in self._retry_at.values() if at > now]
            timeout = min([self.config.poll_s, *waits])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.01))

    async def _record_stats(self) -> None:
        stats = await self.runner.run(self.store.stats, time.time())
        for target, s in stats.items():
            DEPTH.labels(target).set(s.depth)
            OLDEST_AGE.labels(target).set(s.oldest_age_s)
            DEAD_ROWS.labels(target).set(s.dead)

    async def _drain(self, target: str) -> None:
        """Delivers what is due for one target, in order; stops at the first retryable failure
        (so nothing overtakes it) and backs off."""
        while not self._stopping.is_set() and time.monotonic() >= self._retry_at[target]:
            rows = await self.runner.run(self.store.due, target, self.config.batch_size)
            if not rows:
                return
            for run in _runs(rows):
                if self._stopping.is_set():
                    return
                if not await self._deliver(target, run):
                    return
            if len(rows) < self.config.batch_size:
                return

    async def _deliver(self, target: str, run: Sequence[OutboxRow]) -> bool:
        """True when the run is done with (delivered, or set aside as invalid)."""
        try:
            await self._send(run)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in PERMANENT:
                return await self._isolate(target, run, exc)
            return await self._retry_later(target, run, exc.code().name, exc.details() or "")
        except Exception as exc:  # a timeout or a broken channel: retry
            return await self._retry_later(target, run, type(exc).__name__, str(exc))
        await self.runner.run(self.store.ack, [r.seq for r in run])
        DELIVERED.labels(target, run[0].kind).inc(len(run))
        self._failures[target] = 0
        return True

    async def _isolate(
        self, target: str, run: Sequence[OutboxRow], exc: grpc.aio.AioRpcError
    ) -> bool:
        """A batch was refused as invalid: deliver its rows one by one and set aside only the
        ones that are refused on their own."""
        if len(run) > 1:
            for row in run:
                if not await self._deliver(target, [row]):
                    return False
            return True
        error = f"{exc.code().name}: {exc.details() or ''}"
        log.error(
            "outbox row refused by its target; kept as dead",
            extra={"target": target, "kind": run[0].kind, "seq": run[0].seq, "error": error},
        )
        FAILURES.labels(target, exc.code().name).inc()
        await self.runner.run(self.store.failed, [run[0].seq], error, True)
        return True

    async def _retry_later(
        self, target: str, run: Sequence[OutboxRow], code: str, detail: str
    ) -> bool:
        FAILURES.labels(target, code).inc()
        self._failures[target] += 1
        delay = min(
            self.config.backoff_max_s,
            self.config.backoff_initial_s * 2 ** (self._failures[target] - 1),
        )
        self._retry_at[target] = time.monotonic() + delay
        failures = self._failures[target]
        if failures & (failures - 1) == 0:  # the 1st, 2nd, 4th, 8th ... failure in a row
            log.warning(
                "could not forward feedback; will retry",
                extra={
                    "target": target,
                    "code": code,
                    "failures_in_a_row": failures,
                    "retry_in_s": delay,
                    "rows": len(run),
                },
            )
        await self.runner.run(self.store.failed, [r.seq for r in run], f"{code}: {detail}", False)
        return False

    async def _send(self, run: Sequence[OutboxRow]) -> None:
        first = run[0]
        key = self._keys.get(first.tenant_id)
        if key is None:  # the configuration lost this tenant's key: keep the rows until it is back
            raise RuntimeError(f"no API key configured for tenant {first.tenant_id!r}")
        metadata = (("authorization", f"Bearer {key}"), ("x-request-id", f"outbox-{first.seq}"))
        timeout = self.config.call_timeout_s
        kind = (first.target, first.kind)
        if kind == (PREDICTION, IMPRESSION):
            await self.down.prediction.LogImpressions(
                prediction_pb2.LogImpressionsRequest(
                    impressions=[_parse(r, prediction_pb2.Impression()) for r in run]
                ),
                metadata=metadata,
                timeout=timeout,
            )
        elif kind == (PREDICTION, OUTCOME):
            await self.down.prediction.LogOutcomes(
                prediction_pb2.LogOutcomesRequest(
                    outcomes=[_parse(r, prediction_pb2.Outcome()) for r in run]
                ),
                metadata=metadata,
                timeout=timeout,
            )
        elif kind == (PROFILE, EVENT):
            await self.down.profile.IngestEvents(
                profile_pb2.IngestEventsRequest(
                    events=[_parse(r, profile_pb2.Event()) for r in run]
                ),
                metadata=metadata,
                timeout=timeout,
            )
        elif kind == (PREDICTION, DELETE_USER):
            for r in run:
                await self.down.prediction.DeleteUser(
                    _parse(r, prediction_pb2.PredictionServiceDeleteUserRequest()),
                    metadata=metadata,
                    timeout=timeout,
                )
        elif kind == (PROFILE, DELETE_USER):
            for r in run:
                reply = await self.down.profile.DeleteUser(
                    _parse(r, profile_pb2.DeleteUserRequest()), metadata=metadata, timeout=timeout
                )
                log.info(
                    "user deleted in the profile service",
                    extra={"seq": r.seq, "deleted_event_count": reply.deleted_event_count},
                )
        else:
            raise ValueError(f"unknown outbox row kind {kind!r}")


def _runs(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """Consecutive rows of one tenant and kind go in one call; order is kept."""
    runs: list[list[OutboxRow]] = []
    for row in rows:
        if runs and (runs[-1][0].tenant_id, runs[-1][0].kind) == (row.tenant_id, row.kind):
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _parse(row: OutboxRow, message: Any) -> Any:
    return json_format.ParseDict(row.payload, message, ignore_unknown_fields=True)
