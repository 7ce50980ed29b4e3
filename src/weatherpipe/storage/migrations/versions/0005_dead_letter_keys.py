"""Dead-letter keys: dead_letters.message_key, unique, so a redelivered message's dead letter
is stored once (see ingest/refusals.py for how the key is made).

Rows stored before keep NULL: a unique index takes any number of NULLs on SQLite, MySQL,
MariaDB and PostgreSQL, and no key can be made for them afterwards (the bus ids are gone, and
a key from their bytes would collide on the very copies redelivery stored).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("message_key", sa.String(32), nullable=True))
    op.create_index("uq_dead_letters_message_key", "dead_letters", ["message_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_dead_letters_message_key", table_name="dead_letters")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("message_key")
