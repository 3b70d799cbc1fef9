"""Fixtures for FusionService's use cases: a real SQLite FusionStore, migrated the way
`copyloop.fusion.main` migrates it, and the thread pool the store runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copyloop.common.db import BlockingRunner, make_engine, migrate
from copyloop.fusion.main import MIGRATIONS
from copyloop.fusion.store import FusionStore


@pytest.fixture
def fusion_store(tmp_path: Path) -> Iterator[FusionStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'fusion.db'}")
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    yield FusionStore(engine)
    engine.dispose()


@pytest.fixture
def runner() -> Iterator[BlockingRunner]:
    pool = BlockingRunner(workers=2, name="fusion-test")
    yield pool
    pool.close()
