"""l2pop journal, agents and lease tables

Revision ID: 5b2e0c4d7a91
Revises: start_networking_l2pop
"""

from alembic import op
import sqlalchemy as sa
from neutron_lib.db import constants as migration

# revision identifiers, used by Alembic.
revision = "5b2e0c4d7a91"
down_revision = "start_networking_l2pop"
branch_labels = (migration.EXPAND_BRANCH,)


def upgrade():
    op.create_table(
        "l2pop_journal",
        sa.Column("seqnum", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("object_type", sa.String(36), nullable=False),
        sa.Column("object_uuid", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(36), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_l2pop_journal_state", "l2pop_journal", ["state"])
    op.create_table(
        "l2pop_agents",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "l2pop_journal_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(255), nullable=True),
        sa.Column("expires_at", sa.DateTime, nullable=True),
    )
