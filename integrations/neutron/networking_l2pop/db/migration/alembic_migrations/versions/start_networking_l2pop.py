"""start networking-l2pop branch

Revision ID: start_networking_l2pop
Revises: None
"""

# revision identifiers, used by Alembic.
revision = "start_networking_l2pop"
down_revision = None


def upgrade():
    pass
