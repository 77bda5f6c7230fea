"""The alembic branch (neutron-db-manage --subproject networking-l2pop) makes the models' tables."""

import os
import subprocess
import sys
import tempfile
import unittest

import sqlalchemy as sa

from networking_l2pop.db import models

TABLES = (models.L2popJournal, models.L2popAgent, models.L2popJournalLease)


class Migration(unittest.TestCase):
    def test_upgrade_head_makes_the_models_tables(self):
        folder = tempfile.TemporaryDirectory(prefix="l2pop-migration-")
        self.addCleanup(folder.cleanup)
        path = os.path.join(folder.name, "neutron.db")
        url = "sqlite:///" + path
        manage = os.path.join(os.path.dirname(sys.executable), "neutron-db-manage")
        done = subprocess.run(
            [manage, "--database-connection", url, "--subproject", "networking-l2pop", "upgrade", "head"],
            capture_output=True,
            text=True,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        inspector = sa.inspect(sa.create_engine(url))
        for model in TABLES:
            table = model.__table__
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            self.assertEqual(sorted(columns), sorted(c.name for c in table.columns), table.name)
            for column in table.columns:
                self.assertEqual(columns[column.name]["nullable"], column.nullable, (table.name, column.name))
                self.assertEqual(
                    type(columns[column.name]["type"]).__name__.upper(),
                    column.type.compile(dialect=sa.create_engine(url).dialect).split("(")[0],
                    (table.name, column.name),
                )
            self.assertEqual(
                inspector.get_pk_constraint(table.name)["constrained_columns"],
                [c.name for c in table.primary_key.columns],
            )
        heads = sa.create_engine(url).connect().execute(sa.text("select version_num from l2pop_alembic_version"))
        self.assertEqual(len(list(heads)), 2)  # expand and contract heads
