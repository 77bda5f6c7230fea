"""The driver's tables in Neutron's database.

- ``l2pop_journal``: what the l2pop server still has to be told, one row per change, numbered
  in commit order (``seqnum``); written in the same transaction as the Neutron change
  (precommit), deleted once the server took it. A row the server refuses for good (a 4xx) is
  kept with state ``failed`` and its error, for the operator, and delivery goes on.
- ``l2pop_agents``: per host, the agent fields l2pop was last told (tunneling_ip, tunnel
  types). Heartbeats that change nothing are not journalled; a report whose journal write was
  lost (the agent callback runs after Neutron's own commit) is caught by the next heartbeat.
- ``l2pop_journal_lease``: one row; the neutron-server process holding it is the only one
  delivering, so rows reach the server in ``seqnum`` order even with many API workers.
"""

import sqlalchemy as sa
from neutron_lib.db import model_base

PENDING = "pending"
FAILED = "failed"


class L2popJournal(model_base.BASEV2):
    __tablename__ = "l2pop_journal"

    seqnum = sa.Column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    object_type = sa.Column(sa.String(36), nullable=False)
    object_uuid = sa.Column(sa.String(255), nullable=False)
    operation = sa.Column(sa.String(36), nullable=False)
    data = sa.Column(sa.Text, nullable=False)
    state = sa.Column(sa.String(16), nullable=False, default=PENDING, index=True)
    retry_count = sa.Column(sa.Integer, nullable=False, default=0)
    last_error = sa.Column(sa.Text, nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False)
    next_attempt_at = sa.Column(sa.DateTime, nullable=True)


class L2popAgent(model_base.BASEV2):
    __tablename__ = "l2pop_agents"

    host = sa.Column(sa.String(255), primary_key=True)
    data = sa.Column(sa.Text, nullable=False)


class L2popJournalLease(model_base.BASEV2):
    __tablename__ = "l2pop_journal_lease"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    holder = sa.Column(sa.String(255), nullable=True)
    expires_at = sa.Column(sa.DateTime, nullable=True)
