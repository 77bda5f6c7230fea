"""``networking-l2pop-sync`` as an operator runs it: neutron.conf, the ML2 plugin loaded the way
neutron-server loads it (``neutron.manager.init``), a database with Neutron's whole schema.

A child process makes the cloud with the plugin's own API (an L2 agent, a network, a subnet, a
bound port) and then empties the journal, as if the driver had not been installed; the CLI then
journals and delivers everything, and the l2pop server has it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

from tests import support

MAKE_CLOUD = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    import sqlalchemy as sa
    from neutron.common import config as n_config
    from neutron.db.migration.models import head  # noqa: F401 (every Neutron table)
    from neutron_lib.db import model_base
    from networking_l2pop.db import models  # noqa: F401
    conf, url = sys.argv[1], sys.argv[2]
    model_base.BASEV2.metadata.create_all(sa.create_engine(url))
    n_config.register_common_config_options()
    n_config.init(["--config-file", conf])
    from neutron import manager
    from neutron_lib import context
    from neutron_lib.db import api as db_api
    from neutron_lib.plugins import directory
    manager.init()
    plugin = directory.get_plugin()
    ctx = context.get_admin_context()
    plugin.create_or_update_agent(ctx, {
        "agent_type": "Open vSwitch agent", "binary": "neutron-openvswitch-agent",
        "host": "sync-host", "topic": "N/A", "start_flag": True,
        "configurations": {"tunneling_ip": "192.0.2.51", "tunnel_types": ["vxlan"]}})
    net = plugin.create_network(ctx, {"network": {
        "name": "n", "admin_state_up": True, "tenant_id": "p", "shared": False,
        "provider:network_type": "vxlan", "provider:segmentation_id": 2001,
        "provider:physical_network": None}})
    plugin.create_subnet(ctx, {"subnet": {
        "network_id": net["id"], "cidr": "10.51.0.0/24", "ip_version": 4, "tenant_id": "p",
        "name": "", "enable_dhcp": False, "gateway_ip": None, "allocation_pools": None,
        "dns_nameservers": None, "host_routes": None, "subnetpool_id": None,
        "ipv6_ra_mode": None, "ipv6_address_mode": None, "prefixlen": None,
        "description": "", "segment_id": None, "use_default_subnetpool": False,
        "service_types": [], "dns_publish_fixed_ip": False}})
    port = plugin.create_port(ctx, {"port": {
        "network_id": net["id"], "tenant_id": "p", "name": "", "admin_state_up": True,
        "mac_address": "fa:16:3e:51:00:01", "fixed_ips": [{"ip_address": "10.51.0.11"}],
        "device_id": "vm", "device_owner": "compute:nova", "binding:host_id": "sync-host"}})
    with db_api.CONTEXT_WRITER.using(ctx):
        ctx.session.query(models.L2popJournal).delete()
        ctx.session.query(models.L2popAgent).delete()
    print(net["id"], port["id"])
    """
)


class SyncCommand(unittest.TestCase):
    def test_sync_journals_and_delivers_an_existing_cloud(self):
        server = support.L2popServer()
        server.start()
        self.addCleanup(server.close)
        folder = tempfile.mkdtemp(prefix="l2pop-sync-")
        self.addCleanup(shutil.rmtree, folder, True)
        url = "sqlite:///%s/neutron.db" % folder
        conf = os.path.join(folder, "neutron.conf")
        with open(conf, "w") as out:
            out.write(
                "[DEFAULT]\ncore_plugin = ml2\nservice_plugins =\nstate_path = %s\n"
                "transport_url = %s\n"
                "[database]\nconnection = %s\n"
                "[ml2]\nmechanism_drivers = openvswitch,l2pop_server\ntype_drivers = vxlan\n"
                "tenant_network_types = vxlan\nextension_drivers =\n"
                "[ml2_type_vxlan]\nvni_ranges = 1:3000\n"
                "[l2pop_server]\nurl = %s\ntoken = %s\njournal_thread = false\n"
                "[oslo_concurrency]\nlock_path = %s\n"
                % (folder, support.oslo_url(), url, server.url, support.ADMIN_TOKEN, folder)
            )
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        made = subprocess.run([sys.executable, "-c", MAKE_CLOUD, conf, url], capture_output=True, text=True, env=env)
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr[-4000:])
        network_id, port_id = made.stdout.split()[-2:]
        self.assertEqual(server.get("/v2.0/networks?name=" + network_id)["networks"], [])

        sync = os.path.join(os.path.dirname(sys.executable), "networking-l2pop-sync")
        done = subprocess.run([sync, "--config-file", conf], capture_output=True, text=True, env=env)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr[-4000:])

        networks = server.get("/v2.0/networks?name=" + network_id)["networks"]
        self.assertEqual(len(networks), 1)
        # l2pop keeps Neutron's ids, so its casts name the networks Neutron's agents know.
        self.assertEqual(networks[0]["id"], network_id)
        self.assertEqual(networks[0]["provider:segmentation_id"], 2001)
        ports = server.get("/v2.0/ports?name=" + port_id)["ports"]
        self.assertEqual(len(ports), 1)
        self.assertEqual(ports[0]["id"], port_id)
        self.assertEqual(ports[0]["mac_address"], "fa:16:3e:51:00:01")
        self.assertEqual([ip["ip_address"] for ip in ports[0]["fixed_ips"]], ["10.51.0.11"])
        self.assertEqual(ports[0]["binding:host_id"], "sync-host")
        self.assertEqual(ports[0]["status"], "DOWN")
        agents = [a for a in server.get("/v2.0/agents")["agents"] if a["host"] == "sync-host"]
        self.assertEqual(len(agents), 1)
        self.assertEqual(agents[0]["configurations"]["tunneling_ip"], "192.0.2.51")


if __name__ == "__main__":
    unittest.main()
