"""Alembic environment for FusionService; run by copyloop.common.db.migrate at start-up."""

from copyloop.common.db import run_migrations_env
from copyloop.fusion.schema import metadata

run_migrations_env(metadata)
