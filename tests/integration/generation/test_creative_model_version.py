"""The creative pool records which copywriter version wrote each creative (migration 0003) and
filters by it and by template version, from the database and from the read cache alike, on
SQLite and PostgreSQL."""

from __future__ import annotations

from copyloop.common.db import make_engine, migrate
from copyloop.generation.main import MIGRATIONS
from copyloop.generation.store import LIVE, CreativeStore, NewCreative


def creative(n: int, model_version: str, template_version: str) -> NewCreative:
    return NewCreative(
        item_id="sku-1",
        item_version=1,
        channel="push",
        locale="en-US",
        segment="",
        template_version=template_version,
        text=f"copy {n} by {model_version or 'a template'} with {template_version}",
        quality=n / 10,
        variant={"angle": "value", "model_version": model_version},
        model_version=model_version,
    )


def test_model_and_template_versions_are_stored_and_filtered(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_generation")
    direct, cached = CreativeStore(engine), CreativeStore(engine, pool_cache_ttl_s=3600)
    stored = direct.add(
        "t",
        [
            creative(1, "1", "v1"),
            creative(2, "2", "v1"),
            creative(3, "2", "v2"),
            creative(4, "", "v1"),  # template copy: no model version
        ],
        LIVE,
    )
    assert [c.model_version for c in stored] == ["1", "2", "2", ""]
    items = [("sku-1", 1)]

    def texts(store: CreativeStore, model_version: str = "", template_version: str = "") -> set:
        found = store.by_items(
            "t", items, "push", "en-US", "", LIVE, 10, model_version, template_version
        )
        return {c.text for c in found.get("sku-1", [])}

    for store in (direct, cached, cached):  # the cached store twice: a miss, then a hit
        assert len(texts(store)) == 4
        assert texts(store, "2") == {"copy 2 by 2 with v1", "copy 3 by 2 with v2"}
        assert texts(store, "2", "v2") == {"copy 3 by 2 with v2"}
        assert texts(store, "", "v1") == {
            "copy 1 by 1 with v1",
            "copy 2 by 2 with v1",
            "copy 4 by a template with v1",
        }
        assert texts(store, "7") == set()
    # Records read back carry the version too (GetCreatives' Creative.model_version).
    listed = direct.list("t", "sku-1", LIVE, "", 10)
    assert sorted(c.model_version for c in listed) == ["", "1", "2", "2"]
    engine.dispose()
