"""Alerts: incidents, the delivery outbox and the log of delivery attempts.

- alert_incidents: one row per incident of a rule on a device ("" for fleet-wide rules);
  `open_key` is set while it is open, and unique, so an incident is opened once.
- alert_notifications: one notification to one receiver, pending until delivered or given up
  (the outbox: retries survive a restart).
- alert_attempts: every delivery attempt, with the HTTP status or the error.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weatherpipe.storage.tables import Double, Id, JsonText, Timestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_incidents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("open_key", sa.String(170), nullable=True),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("resolved_at", Timestamp, nullable=True),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.UniqueConstraint("open_key", name="uq_alert_incidents_open_key"),
    )
    op.create_index("ix_alert_incidents_started", "alert_incidents", ["started_at"])
    op.create_table(
        "alert_notifications",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("receiver", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("payload", JsonText, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("claimed_until", Timestamp, nullable=True),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_index(
        "ix_alert_notifications_due", "alert_notifications", ["state", "next_attempt_at"]
    )
    op.create_table(
        "alert_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("notification_id", Id, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("seconds", Double, nullable=False),
    )
    op.create_index("ix_alert_attempts_notification", "alert_attempts", ["notification_id"])


def downgrade() -> None:
    op.drop_table("alert_attempts")
    op.drop_table("alert_notifications")
    op.drop_table("alert_incidents")
