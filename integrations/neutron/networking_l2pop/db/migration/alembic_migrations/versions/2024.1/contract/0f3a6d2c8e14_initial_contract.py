"""networking-l2pop contract branch

Revision ID: 0f3a6d2c8e14
Revises: start_networking_l2pop
"""

from neutron_lib.db import constants as migration

# revision identifiers, used by Alembic.
revision = "0f3a6d2c8e14"
down_revision = "start_networking_l2pop"
branch_labels = (migration.CONTRACT_BRANCH,)


def upgrade():
    pass
