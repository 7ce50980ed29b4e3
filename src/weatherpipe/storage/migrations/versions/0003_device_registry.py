"""The device registry: readable ids up to 64 characters, description, tags, enabled, credentials.

- device_id (and devices.id) widen from 36 to 64 characters. PostgreSQL cannot change the type
  of a column a view reads (and SQLite rebuilds the tables), so weather_trans is dropped and
  made again around it.
- devices.latitude/longitude/first_seen/last_seen may be NULL: a device provisioned ahead has
  no reading yet, and may have no place.
- devices.description, .tags, .enabled (true for every device already there), .token_hash
  (sha256 hex of the device's bearer token, unique), .hmac_key (hex).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weatherpipe.storage.tables import (
    WEATHER_TRANS_VIEW,
    WEATHER_TRANS_VIEW_POSTGRESQL,
    Double,
    Timestamp,
)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every table with a device id column, and that column's name.
DEVICE_COLUMNS = (
    ("devices", "id"),
    ("readings", "device_id"),
    ("readings_minute", "device_id"),
    ("readings_daily", "device_id"),
    ("detector_state", "device_id"),
    ("injected_anomalies", "device_id"),
)
OPTIONAL = (("latitude", Double), ("longitude", Double))
STAMPS = (("first_seen", Timestamp), ("last_seen", Timestamp))


def _width(length: int) -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW weather_trans")  # SQLite rebuilds the tables; the view would dangle
    for table, column in DEVICE_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.String(length),
                existing_type=sa.String(36 if length == 64 else 64),
                existing_nullable=False,
            )
    op.execute(WEATHER_TRANS_VIEW_POSTGRESQL if dialect == "postgresql" else WEATHER_TRANS_VIEW)


def upgrade() -> None:
    _width(64)
    with op.batch_alter_table("devices") as batch:
        for name, type_ in (*OPTIONAL, *STAMPS):
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.add_column(sa.Column("description", sa.String(500), nullable=True))
        batch.add_column(sa.Column("tags", sa.String(500), nullable=True))
        batch.add_column(sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hmac_key", sa.String(128), nullable=True))
        batch.create_unique_constraint("uq_devices_token_hash", ["token_hash"])


def downgrade() -> None:
    # Devices provisioned without a place or a reading cannot be kept by the older schema.
    op.execute("DELETE FROM devices WHERE latitude IS NULL OR first_seen IS NULL")
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint("uq_devices_token_hash", type_="unique")
        for name in ("hmac_key", "token_hash", "enabled", "tags", "description"):
            batch.drop_column(name)
        for name, type_ in (*OPTIONAL, *STAMPS):
            batch.alter_column(name, existing_type=type_, nullable=False)
    _width(36)
