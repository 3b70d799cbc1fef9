"""Database plumbing shared by the services' stores: engines (SQLite in WAL mode by default,
PostgreSQL by URL), Alembic migrations run at start-up, and running blocking SQL off the event
loop."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

P = ParamSpec("P")
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """An engine tuned for the service: WAL + busy timeout on SQLite, pooled on PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # No pre-ping: a file database cannot drop the connection, and a ping per checkout
        # costs a round trip on every query of a hot path.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # A bounded connect and pool wait: an unreachable server or an exhausted pool answers
    # UNAVAILABLE (see `transient_error`) within seconds instead of holding the call.
    return create_engine(
        parsed,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


POOL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5

# PostgreSQL SQLSTATEs (or their classes) that say "try again": connection exceptions (08),
# transaction rollbacks such as serialization failures and deadlocks (40), insufficient
# resources such as too many connections (53), operator intervention such as an admin
# shutdown, a restart or a statement/lock timeout (57), system I/O errors (58), a lock not
# available (55P03) and an object in use (55006).
_PG_TRANSIENT_PREFIXES = ("08", "40", "53", "57", "58", "55P03", "55006")
# SQLite reports a held lock, a file it cannot open and I/O trouble with these messages;
# everything else it calls OperationalError ("no such table", syntax) is a bug, not a blip.
_SQLITE_TRANSIENT_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)


def transient_error(error: BaseException) -> str | None:
    """Why `error` (or an exception it was raised from) is a database blip a client should
    retry (a disconnect, a refused or timed-out connection, a lock timeout, an exhausted
    pool), or None when it is not one."""
    for exc in _chain(error):
        if isinstance(exc, sa_exc.TimeoutError):
            return "database connection pool exhausted"
        if isinstance(exc, sa_exc.DisconnectionError):
            return "database connection lost"
        if isinstance(exc, sa_exc.DBAPIError):
            if exc.connection_invalidated:
                return "database connection lost"
            reason = _dbapi_transient(exc.orig)
        else:
            reason = _dbapi_transient(exc)
        if reason:
            return reason
    return None


def _dbapi_transient(exc: BaseException | None) -> str | None:
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if any(m in message for m in _SQLITE_TRANSIENT_MESSAGES):
            return f"database busy ({message})"
        return None
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in the lock file
        return None
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate
        if sqlstate is None:
            # Raised by the client library itself: a refused, reset or timed-out connection.
            return "database unreachable" if isinstance(exc, psycopg.OperationalError) else None
        if sqlstate.startswith(_PG_TRANSIENT_PREFIXES):
            return f"database unavailable (SQLSTATE {sqlstate})"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from, a few levels deep, each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def migrate(engine: Engine, migrations_dir: Path, version_table: str) -> None:
    """Brings the schema to head; each service has its own script dir and version table so
    several services may share one database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["version_table"] = version_table
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ping(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True


class BlockingRunner:
    """Runs blocking store calls on a small thread pool so the gRPC loop keeps serving."""

    def __init__(self, workers: int = 4, name: str = "store") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def run_migrations_env(target_metadata: MetaData) -> None:
    """The body of every service's Alembic env.py: migrate on the connection `migrate` hands
    over, recording the version in the service's own table."""
    from alembic import context

    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
