"""Flags say what they are, detector state is JSON, sensitivity per device.

- readings.kind, readings.severity: what a flag is (spike, dip, ...; low, medium, high).
- detector_state.state becomes JSON text. Stored states were pickles; they are replaced by the
  marker {"version": 0, "format": "pickle"} without being read (unpickling can run code), so the
  detection job restarts those devices' detectors, logging one warning each.
- detector_state.warming_up (the API's "warming up") and .false_alarms_per_day (the sensitivity
  the state was built with).
- devices.false_alarms_per_day: a per-device sensitivity override (NULL: the global setting).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weatherpipe.storage.tables import (
    WEATHER_TRANS_VIEW,
    WEATHER_TRANS_VIEW_POSTGRESQL,
    Blob,
    Double,
    JsonText,
    Label,
)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEGACY_STATE = '{"version": 0, "format": "pickle"}'
_state = sa.table(
    "detector_state", sa.column("state", sa.Text), sa.column("warming_up", sa.Boolean)
)


def upgrade() -> None:
    op.add_column("readings", sa.Column("kind", Label, nullable=True))
    op.add_column("readings", sa.Column("severity", Label, nullable=True))
    op.add_column("devices", sa.Column("false_alarms_per_day", Double, nullable=True))
    op.add_column("detector_state", sa.Column("warming_up", sa.Boolean, nullable=True))
    op.add_column("detector_state", sa.Column("false_alarms_per_day", Double, nullable=True))
    # Never read the pickles: overwrite them with a marker the job recognises and resets.
    # PostgreSQL cannot write text into bytea: the type change itself writes the marker.
    postgresql = op.get_bind().dialect.name == "postgresql"
    marker = {} if postgresql else {"state": LEGACY_STATE}
    op.execute(_state.update().values(warming_up=True, **marker))
    with op.batch_alter_table("detector_state") as batch:
        batch.alter_column(
            "state",
            type_=JsonText,
            existing_nullable=False,
            postgresql_using=f"'{LEGACY_STATE}'",
        )


def downgrade() -> None:
    # Older code unpickles its state; it cannot read JSON, so its detectors start afresh.
    op.execute(_state.delete())
    with op.batch_alter_table("detector_state") as batch:
        batch.alter_column(
            "state",
            type_=Blob,
            existing_nullable=False,
            postgresql_using="convert_to(state, 'UTF8')",
        )
        batch.drop_column("false_alarms_per_day")
        batch.drop_column("warming_up")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("false_alarms_per_day")
    op.execute("DROP VIEW weather_trans")  # SQLite rebuilds the table; the view would dangle
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("severity")
        batch.drop_column("kind")
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(WEATHER_TRANS_VIEW_POSTGRESQL if postgresql else WEATHER_TRANS_VIEW)
