"""copyloop.common.db.transient_error: which database failures are blips a client should retry
(UNAVAILABLE), shown with real faults: a held SQLite lock, a refused PostgreSQL connection, an
exhausted pool; and which are bugs that must stay INTERNAL (a missing table, bad SQL)."""

from __future__ import annotations

import socket
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from copyloop.common.db import make_engine, transient_error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_held_sqlite_lock_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(OperationalError) as err, engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert "locked" in (transient_error(err.value) or "")
        # The raw driver error, and an error raised from it, are recognised as well.
        assert transient_error(err.value.orig) is not None
        try:
            raise RuntimeError("store failed") from err.value
        except RuntimeError as wrapped:
            assert transient_error(wrapped) is not None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def test_sqlite_bugs_are_not_transient(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    for sql in ("SELECT * FROM no_such_table", "SELEC 1"):
        with pytest.raises(DBAPIError) as err, engine.connect() as conn:
            conn.execute(text(sql))
        assert transient_error(err.value) is None, sql
    assert transient_error(ValueError("boom")) is None
    engine.dispose()


def test_an_unreachable_postgresql_is_transient() -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
    with pytest.raises(OperationalError) as err, engine.connect():
        pass
    assert transient_error(err.value) == "database unreachable"
    engine.dispose()


def test_an_exhausted_pool_is_transient(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    with engine.connect(), pytest.raises(Exception) as err, engine.connect():
        pass
    assert transient_error(err.value) == "database connection pool exhausted"
    engine.dispose()


def test_postgresql_states(postgres_admin_url: str) -> None:
    """Real server errors: a lock timeout is transient, a missing table is not."""
    engine = make_engine(postgres_admin_url)
    table = f"copyloop_lock_probe_{uuid.uuid4().hex[:10]}"
    with pytest.raises(DBAPIError) as err, engine.connect() as conn:
        conn.execute(text("SELECT * FROM copyloop_no_such_table"))
    assert transient_error(err.value) is None
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (x int)"))
    try:
        with engine.connect() as holder, engine.connect() as waiter:
            holder.execute(text("BEGIN"))
            holder.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            waiter.execute(text("SET lock_timeout = '50ms'"))
            with pytest.raises(DBAPIError) as err:
                waiter.execute(text(f"SELECT * FROM {table}"))
            assert transient_error(err.value) == "database unavailable (SQLSTATE 55P03)"
            waiter.rollback()
            holder.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
