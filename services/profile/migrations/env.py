"""Alembic environment for ProfileService; run by copyloop.common.db.migrate at start-up."""

from alembic import context

from copyloop.profile.schema import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes.get("version_table", "alembic_version_profile"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
