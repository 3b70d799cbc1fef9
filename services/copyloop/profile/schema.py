"""ProfileService tables. Every row carries its tenant; every key starts with the tenant."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from copyloop.common.idempotency import idempotency_table
from copyloop.common.tombstones import tombstone_table

metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("brand", String(256), nullable=False, default=""),
    Column("category_path", JSON, nullable=False),
    Column("top_category", String(256), nullable=False, default=""),
    Column("price", Float, nullable=False),
    Column("list_price", Float, nullable=False, default=0.0),
    Column("currency_code", String(3), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("selling_points", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Index("ix_items_tenant_category", "tenant_id", "top_category"),
    Index("ix_items_tenant_price", "tenant_id", "price"),
)

events = Table(
    "events",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("type", String(16), nullable=False),
    Column("item_id", String(128), nullable=False, default=""),
    Column("event_time", Float, nullable=False),  # epoch seconds: cheap to write in bulk
    Column("quantity", Integer, nullable=False, default=1),
    Column("price", Float, nullable=False, default=0.0),
    Column("query", Text, nullable=False, default=""),
    Column("request_id", String(128), nullable=False, default=""),
    Column("creative_id", String(128), nullable=False, default=""),
    Column("channel", String(32), nullable=False, default=""),
    Index("ix_events_tenant_user", "tenant_id", "user_id"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)

item_stats = Table(
    "item_stats",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("popularity", Float, nullable=False),  # decayed weighted engagement at ref_time
    Column("ref_time", Float, nullable=False),
    Column("purchase_count", BigInteger, nullable=False, default=0),
)

# Deleted users, by a hash of their id (the id itself is erased): events about what a user did
# before their deletion are refused, so late or replayed traffic cannot bring the user back.
user_tombstones = tombstone_table(metadata)

idempotency_records = idempotency_table(metadata)
