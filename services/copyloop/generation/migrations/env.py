"""Alembic environment for GenerationService; run by copyloop.common.db.migrate at start-up."""

from copyloop.common.db import run_migrations_env
from copyloop.generation.schema import metadata

run_migrations_env(metadata)
