"""Fixtures every suite may use: database URLs for SQLite and a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ADMIN_URL = os.environ.get(
    "COPYLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _ensure_postgres(url: str) -> None:
    """Uses the server on the machine; starts the machine's cluster if it is installed but down."""
    if _postgres_reachable(url):
        return
    clusters = list(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    for version in clusters:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )
    if not _postgres_reachable(url):
        pytest.fail(
            f"PostgreSQL is not reachable at {url}; start it or set COPYLOOP_TEST_POSTGRES_URL",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The real PostgreSQL server's admin URL, once checked reachable for the session."""
    _ensure_postgres(POSTGRES_ADMIN_URL)
    return POSTGRES_ADMIN_URL


def create_postgres_database(admin_url: str) -> tuple[str, str]:
    """A fresh, empty database on the real server: (url, name)."""
    name = f"copyloop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(admin_url: str, name: str) -> None:
    """Drops the database even while a service still holds connections to it (FORCE ends
    them), so a test that fails half-way leaves nothing behind."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def postgres_databases(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A factory of fresh, empty PostgreSQL databases (one per service, say), each dropped when
    the test ends, whatever its outcome."""
    admin_url = request.getfixturevalue("postgres_admin_url")

    def create() -> str:
        url, name = create_postgres_database(admin_url)
        request.addfinalizer(lambda: drop_postgres_database(admin_url, name))
        return url

    return create


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs once on SQLite (a WAL file) and once on the real PostgreSQL
    server, each time on an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'copyloop.db'}"
    admin_url = request.getfixturevalue("postgres_admin_url")
    url, name = create_postgres_database(admin_url)
    request.addfinalizer(lambda: drop_postgres_database(admin_url, name))
    return url


# A real local Triton serving the tiny copywriter, shared by every suite that needs it.
pytest_plugins = ["tests.support.triton_fixtures"]
