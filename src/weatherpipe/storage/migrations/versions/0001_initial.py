"""The initial schema: devices, readings, dead letters, rollups, detector state, weather_trans.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weatherpipe.storage.tables import (
    WEATHER_TRANS_VIEW,
    WEATHER_TRANS_VIEW_POSTGRESQL,
    Blob,
    Double,
    Id,
    Timestamp,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("latitude", Double, nullable=False),
        sa.Column("longitude", Double, nullable=False),
        sa.Column("first_seen", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
    )
    op.create_table(
        "readings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("ts", Timestamp, nullable=False),
        sa.Column("temperature", Double, nullable=False),
        sa.Column("latitude", Double, nullable=False),
        sa.Column("longitude", Double, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("is_anomaly", sa.Boolean, nullable=True),
        sa.Column("anomaly_score", Double, nullable=True),
        sa.Column("detector", sa.String(40), nullable=True),
        sa.UniqueConstraint("device_id", "ts", name="uq_readings_device_ts"),
    )
    op.create_index("ix_readings_anomaly_ts", "readings", ["is_anomaly", "ts"])
    op.create_table(
        "dead_letters",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("data", Blob, nullable=False),
        sa.Column("attributes", sa.Text, nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("replayed_at", Timestamp, nullable=True),
    )
    op.create_index("ix_dead_letters_received", "dead_letters", ["received_at"])
    op.create_table(
        "readings_minute",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("minute", Timestamp, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("t_min", Double, nullable=False),
        sa.Column("t_max", Double, nullable=False),
        sa.Column("t_sum", Double, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "minute", name="pk_readings_minute"),
    )
    op.create_table(
        "readings_daily",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
        sa.Column("dom", sa.Integer, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("t_min", Double, nullable=False),
        sa.Column("t_max", Double, nullable=False),
        sa.Column("t_sum", Double, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "day", name="pk_readings_daily"),
    )
    op.create_index("ix_readings_daily_month_dom", "readings_daily", ["month", "dom"])
    op.create_table(
        "detector_state",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("detector", sa.String(40), nullable=False),
        sa.Column("last_ts", Timestamp, nullable=False),
        sa.Column("state", Blob, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "detector", name="pk_detector_state"),
    )
    op.create_table(
        "injected_anomalies",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("start_ts", Timestamp, nullable=False),
        sa.Column("end_ts", Timestamp, nullable=False),
        sa.UniqueConstraint("device_id", "start_ts", name="uq_injected_device_start"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(WEATHER_TRANS_VIEW_POSTGRESQL if postgresql else WEATHER_TRANS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW weather_trans")
    for table in (
        "injected_anomalies",
        "detector_state",
        "readings_daily",
        "readings_minute",
        "dead_letters",
        "readings",
        "devices",
    ):
        op.drop_table(table)
