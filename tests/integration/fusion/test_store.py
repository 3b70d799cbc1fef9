"""FusionStore on both databases: what Recommend logs fits the columns on PostgreSQL too
(fallback, generic and generated copy, the longest creative ids an item id allows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from copyloop.common.db import make_engine, migrate
from copyloop.fusion.main import MIGRATIONS
from copyloop.fusion.store import FusionStore, ServedRow
from copyloop.v1 import fusion_pb2


@pytest.fixture
def store(database_url: str) -> Iterator[FusionStore]:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    yield FusionStore(engine)
    engine.dispose()


@pytest.mark.parametrize("source", list(fusion_pb2.CopySource.keys())[1:])
def test_every_copy_source_and_the_longest_creative_id_are_logged(
    store: FusionStore, source: str
) -> None:
    item_id = "i" * 128  # the longest item id the catalog accepts
    creative_id = f"fallback:{item_id}"
    row = ServedRow(
        impression_id=f"im_{source.lower()}",
        request_id="rq_1",
        user_id="u1",
        item_id=item_id,
        creative_id=creative_id,
        segment="bargain_hunter",
        experiment_id="",
        arm_id="",
        p_ctr=0.03,
        p_cvr=0.05,
        price=9.99,
        copy_source=source,
        model_version="prior:fusion",
        serve_time=1_700_000_000.0,
        features={},
    )
    store.log_served("tenant-a", [row])
    assert store.bandit_stats("tenant-a", [creative_id], "bargain_hunter") == {}
