"""The journal's delivery threads, as neutron-server runs them, against a real l2pop server.

Two :class:`Journal` instances stand for two neutron-server processes on one database (a
SQLite file here, so that each thread has its own connection): both are kicked, only the lease
holder delivers, and the casts show the rows arrived in journal order. The server is then
killed and started again with rows waiting: the threads deliver them on their own (timer and
backoff), without another kick.
"""

import os
import time
import unittest

from neutron.tests import base

import sqlalchemy as sa
from neutron_lib import context as n_context
from neutron_lib.db import api as db_api
from neutron_lib.db import model_base
from oslo_config import cfg
from oslo_db.sqlalchemy import enginefacade
from oslo_db.sqlalchemy import session as db_session

from networking_l2pop import config
from networking_l2pop import journal
from networking_l2pop import translate
from networking_l2pop.db import models

from tests import support

HOST = "journal-host-%d" % os.getpid()
NETWORK = "6a1c37a2-2f7e-4d38-9d0e-0f9a2c2b7e11"
SUBNET = "b0f0a0c1-5a55-4a9b-8f0e-6c1f4d7e2a01"
PORT = "0d6b7f8e-3c2a-4e1f-9b8a-7c6d5e4f3a21"
MAC = "fa:16:3e:7a:00:01"


class JournalThreads(base.BaseTestCase):
    """Neutron's base test case: its configuration and policy set-up, nothing of the plugin."""

    def setUp(self):
        super().setUp()
        self.server = support.L2popServer()
        self.server.start()
        self.addCleanup(self.server.close)
        # A database file of our own, swapped in the way neutron-lib's SqlFixture does it.
        path = os.path.join(self.get_new_temp_dir().path, "neutron.db")
        engine = db_session.EngineFacade("sqlite:///" + path).get_engine()
        tables = [m.__table__ for m in (models.L2popJournal, models.L2popAgent, models.L2popJournalLease)]
        model_base.BASEV2.metadata.create_all(engine, tables=tables)
        manager = db_api.get_context_manager()
        restore = manager._root_factory
        manager._root_factory = enginefacade._TestTransactionFactory(
            engine, db_session.get_maker(engine), from_factory=restore, apply_global=False
        )
        self.addCleanup(setattr, manager, "_root_factory", restore)
        config.register_opts()
        for key, value in (
            ("url", self.server.url),
            ("token", support.ADMIN_TOKEN),
            ("journal_thread", True),
            ("sync_interval", 0.2),
            ("retry_interval", 0.05),
            ("max_retry_interval", 0.2),
            ("lease_seconds", 5),
            ("timeout", 2.0),
        ):
            cfg.CONF.set_override(key, value, group=config.GROUP)
            self.addCleanup(cfg.CONF.clear_override, key, group=config.GROUP)
        self.context = n_context.get_admin_context()
        self.processes = [journal.Journal(), journal.Journal()]
        for process in self.processes:
            self.addCleanup(process.stop)
        self.capture = support.CastCapture([HOST])
        self.addCleanup(self.capture.close)

    def record(self, process, object_type, operation, data):
        with db_api.CONTEXT_WRITER.using(self.context):
            journal.record(self.context, object_type, data.get("id", data.get("host")), operation, data)
        self.processes[process].kick()

    def wait_delivered(self):
        deadline = time.monotonic() + support.PATIENCE
        while journal.pending_count(self.context):
            self.assertLess(time.monotonic(), deadline, "journal not delivered")
            time.sleep(0.05)
        self.assertEqual(journal.failed_rows(self.context), [])

    def chg_ip_afters(self, count):
        """The `after` IPs of the next ``count`` chg_ip casts for our network, in arrival order.

        A cast seen before is dropped, as oslo.messaging receivers drop it by ``_unique_id``: a
        server killed before it recorded its publish watermark republishes after a restart."""
        network = self.processes[0].client.lookup("networks", NETWORK, fresh=True)[1]
        afters = []
        seen = self.__dict__.setdefault("seen", set())

        def done(casts):
            afters.clear()
            fresh = set()
            for cast in casts:
                if cast.unique_id in seen or cast.unique_id in fresh:
                    continue
                fresh.add(cast.unique_id)
                change = cast.fdb_entries.get("chg_ip", {}).get(network) if cast.method == "update_fdb_entries" else None
                if change:
                    afters.extend(ip for _, ip in change["192.0.2.41"].get("after", []))
            if len(afters) >= count:
                seen.update(fresh)
                return True
            return False

        self.capture.until(done, "%d chg_ip casts" % count)
        return list(afters)

    def test_two_processes_deliver_in_journal_order_and_after_an_outage(self):
        self.record(0, translate.AGENT, translate.REPORT,
                    {"host": HOST, "tunneling_ip": "192.0.2.41", "tunnel_types": ["vxlan"],
                     "l2pop_network_types": None, "start_flag": True})
        self.record(1, translate.NETWORK, translate.CREATE,
                    {"id": NETWORK, "project_id": "p", "network_type": "vxlan",
                     "segmentation_id": 4001, "physical_network": None})
        self.record(0, translate.SUBNET, translate.CREATE,
                    {"id": SUBNET, "network_id": NETWORK, "cidr": "10.41.0.0/24", "project_id": "p"})
        self.record(1, translate.PORT, translate.CREATE,
                    {"id": PORT, "network_id": NETWORK, "project_id": "p", "mac_address": MAC,
                     "fixed_ips": ["10.41.0.10"], "device_owner": "compute:nova", "device_id": "",
                     "host": HOST, "admin_state_up": True})
        self.record(0, translate.PORT, translate.UP, {"id": PORT, "host": HOST})
        # Ten IP changes, recorded alternately by the two processes.
        for i in range(1, 11):
            self.record(i % 2, translate.PORT, translate.UPDATE, {"id": PORT, "fixed_ips": ["10.41.0.%d" % (10 + i)]})
        self.wait_delivered()
        self.assertEqual(self.chg_ip_afters(10), ["10.41.0.%d" % (10 + i) for i in range(1, 11)])

        # Server down: rows wait; back: the threads deliver them without another kick.
        self.server.kill()
        for i in range(11, 16):
            self.record(i % 2, translate.PORT, translate.UPDATE, {"id": PORT, "fixed_ips": ["10.41.0.%d" % (10 + i)]})
        time.sleep(0.5)  # let both threads fail against the dead server (not asserted on)
        self.assertEqual(journal.pending_count(self.context), 5)
        self.server.start()
        self.wait_delivered()
        self.assertEqual(self.chg_ip_afters(5), ["10.41.0.%d" % (10 + i) for i in range(11, 16)])
        port = self.server.get("/v2.0/ports?name=" + PORT)["ports"][0]
        self.assertEqual([ip["ip_address"] for ip in port["fixed_ips"]], ["10.41.0.25"])
        self.assertEqual(port["status"], "ACTIVE")
        with db_api.CONTEXT_READER.using(self.context):
            holders = [row.holder for row in self.context.session.query(models.L2popJournalLease)]
        self.assertEqual(len(holders), 1)
        self.assertIn(holders[0], [process.holder for process in self.processes])


if __name__ == "__main__":
    unittest.main()
