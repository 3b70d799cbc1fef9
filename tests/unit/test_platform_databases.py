"""The main job honours each service's own COPYLOOP_<SERVICE>_DATABASE_URL (PostgreSQL in
production) and keeps SQLite files under var/ for the services without one."""

from __future__ import annotations

from pathlib import Path

from copyloop.platform import PlatformConfig, database_urls_from_env, describe_database

PG = "postgresql://copyloop:secret@db:5432/{}"


def test_each_service_reads_its_own_url() -> None:
    env = {
        "COPYLOOP_PROFILE_DATABASE_URL": PG.format("profile"),
        "COPYLOOP_FUSION_DATABASE_URL": PG.format("fusion"),
        "COPYLOOP_PREDICTION_DATABASE_URL": "  ",
        "COPYLOOP_DATABASE_URL": PG.format("ignored"),
    }
    urls = database_urls_from_env(env)
    assert urls == {"profile": PG.format("profile"), "fusion": PG.format("fusion")}
    cfg = PlatformConfig(var_dir=Path("var"), database_urls=urls)
    assert cfg.url("fusion") == PG.format("fusion")
    assert cfg.url("prediction") == "sqlite:///var/prediction.db"
    assert "secret" not in describe_database(cfg.url("profile"))
