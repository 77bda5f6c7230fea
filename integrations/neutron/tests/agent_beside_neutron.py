"""Our ``l2pop agent`` beside a real neutron-server (issue 12, item 3).

Neutron's real ML2 plugin (its unit-test harness, ``Ml2PluginV2TestCase``) with
``mechanism_drivers = linuxbridge,l2population`` as Neutron ships them serves its agent RPC
(``RpcCallbacks`` on ``q-plugin``, ``AgentExtRpcCallback`` on ``q-reports-plugin``) over the real
RabbitMQ, in a virtual host of its own per run. The real ``l2pop agent`` (``L2POP_BIN``,
``server.kind = "neutron"``) programs the kernel of a network namespace made for the run. A
second host is Neutron's own: an agent registered in the database and its device reported up
through the same RPC callbacks a Linux bridge agent calls.

Asserted: Neutron sees our agent alive (Linux bridge agent, its tunneling_ip), binds our port
to it and marks it ACTIVE when the agent reports the tap up; the kernel then holds the entries
Neutron's l2population cast for the second host's ports (flood, MAC -> VTEP, ARP proxy): the
first by the host cast of the full FDB after update_device_up, the next by a fanout; a port
going down on the second host leaves the kernel; and after a restart from nothing the
refresh_tunnels of the first update_device_up brings the full FDB back.

Runs as root (network namespaces) with rabbitmqctl on the broker's host; started by
``cargo test -p l2pop --test neutron_agent``.
"""

import json
import os
import subprocess
import tempfile
import time
import uuid
from unittest import mock

from neutron_lib import context as n_context
from neutron_lib import fixture as nl_fixture
from neutron_lib.agent import topics
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.plugins import directory
from oslo_config import cfg

from neutron.conf import experimental as c_experimental
from neutron.plugins.ml2 import managers
from neutron.plugins.ml2 import rpc as ml2_rpc
from neutron.tests.common import helpers
from neutron.tests.unit.plugins.ml2 import test_plugin

from tests import support

LOCAL_VTEP = "192.0.2.71"
REMOTE_VTEP = "192.0.2.72"
VNI = 4071
FLOOD_MAC = "00:00:00:00:00:00"


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Vhost:
    """A RabbitMQ virtual host for one run: nothing another test publishes reaches it."""

    def __init__(self):
        self.name = "l2pop-neutron-agent-%s" % uuid.uuid4().hex[:8]
        sh("rabbitmqctl", "-q", "add_vhost", self.name)
        hostport, user, password = support._broker()
        sh("rabbitmqctl", "-q", "set_permissions", "-p", self.name, user, ".*", ".*", ".*")
        self.amqp = "amqp://%s:%s@%s/%s" % (user, password, hostport, self.name)
        self.oslo = "rabbit://%s:%s@%s/%s" % (user, password, hostport, self.name)

    def delete(self):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True)


class BrokerRPCFixture(nl_fixture.RPCFixture):
    """Neutron's RPCFixture on the real broker, with its RPC servers really started."""

    url = None

    def _setUp(self):
        self.useFixture(nl_fixture.fixtures.MonkeyPatch("oslo_messaging.Notifier", mock.MagicMock()))
        from oslo_messaging import conffixture

        self.messaging_conf = conffixture.ConfFixture(cfg.CONF)
        self.messaging_conf.transport_url = BrokerRPCFixture.url
        self.useFixture(self.messaging_conf)
        self.addCleanup(nl_fixture.rpc.cleanup)
        nl_fixture.rpc.init(cfg.CONF)
        # Neutron 24 ships the Linux bridge mechanism driver as experimental.
        c_experimental.register_experimental_opts()
        cfg.CONF.set_override(c_experimental.EXPERIMENTAL_LINUXBRIDGE, True, group="experimental")


class Agent:
    """``l2pop agent`` following Neutron, programming the kernel of namespace ``netns``."""

    def __init__(self, host, netns, amqp_url):
        self.dir = tempfile.mkdtemp(prefix="l2pop-neutron-agent-")
        self.config = os.path.join(self.dir, "agent.toml")
        with open(self.config, "w") as f:
            f.write(
                '[agent]\nhost = "%s"\nlocal_ip = "%s"\nnetns = "%s"\nstatus_listen = ""\n'
                "report_interval_s = 2\nscan_interval_ms = 200\nreconcile_interval_s = 5\n"
                '[server]\nkind = "neutron"\n[bus]\nurl = "%s"\n' % (host, LOCAL_VTEP, netns, amqp_url)
            )
        self.log = open(os.path.join(self.dir, "agent.log"), "w")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.process = subprocess.Popen(
            [support.required_env("L2POP_BIN"), "agent", "--config", self.config],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self):
        with open(self.log.name) as f:
            return f.read()[-12000:]


class AgentBesideNeutron(test_plugin.Ml2PluginV2TestCase):
    _mechanism_drivers = ["linuxbridge", "l2population"]

    def preSetUp(self):
        self.vhost = Vhost()
        self.addCleanup(self.vhost.delete)
        BrokerRPCFixture.url = self.vhost.oslo
        patcher = mock.patch.object(nl_fixture, "RPCFixture", BrokerRPCFixture)
        patcher.start()
        self.addCleanup(patcher.stop)

    def setUp(self):
        super().setUp()
        self.plugin = directory.get_plugin()
        # neutron-server's RPC workers: the plugin's consumers on q-plugin and q-reports-plugin.
        servers = self.plugin.start_rpc_listeners()
        self.addCleanup(self._stop_servers, servers)
        self.ctx = n_context.get_admin_context()
        self.callbacks = ml2_rpc.RpcCallbacks(ml2_rpc.AgentNotifierApi(topics.AGENT), managers.TypeManager())
        suffix = uuid.uuid4().hex[:8]
        self.host = "lb-%s" % suffix
        self.remote = "remote-%s" % suffix
        self.netns = "l2pnb-%s" % suffix
        sh("ip", "netns", "add", self.netns)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.netns], capture_output=True)
        self.ns("ip", "link", "set", "lo", "up")
        # The host's underlay address (a veth pair: no dummy driver on every kernel).
        self.ns("ip", "link", "add", "underlay", "type", "veth", "peer", "name", "underlay-peer")
        self.ns("ip", "addr", "add", LOCAL_VTEP + "/24", "dev", "underlay")
        self.ns("ip", "link", "set", "underlay-peer", "up")
        self.ns("ip", "link", "set", "underlay", "up")

    @staticmethod
    def _stop_servers(servers):
        for server in servers:
            server.stop()
        for server in servers:
            server.wait()

    def ns(self, *args):
        return sh("ip", "netns", "exec", self.netns, *args)

    def wait(self, what, predicate, agent):
        deadline = time.monotonic() + support.PATIENCE
        while True:
            value = predicate()
            if value:
                return value
            if agent.process.poll() is not None or time.monotonic() > deadline:
                self.fail("%s: not reached" % what)
            time.sleep(0.2)

    def agent_row(self, host):
        rows = self.plugin.get_agents(self.ctx, filters={"host": [host]})
        return rows[0] if rows else None

    def make_port(self, network, host, mac, ip):
        body = self._make_port(
            self.fmt,
            network["id"],
            as_admin=True,
            arg_list=(portbindings.HOST_ID, "mac_address", "fixed_ips", "device_owner"),
            **{
                portbindings.HOST_ID: host,
                "mac_address": mac,
                "fixed_ips": [{"ip_address": ip}],
                "device_owner": "compute:nova",
            },
        )
        return body["port"]

    def remote_up(self, port):
        # What the second host's Linux bridge agent would call.
        self.callbacks.update_device_up(self.ctx, agent_id=self.remote, device=port["id"], host=self.remote)

    def fdb(self):
        """{(mac, dst)} of the VXLAN device of VNI, or None while it does not exist."""
        try:
            out = self.ns("bridge", "-j", "fdb", "show", "dev", "vxlan-%d" % VNI)
        except subprocess.CalledProcessError:
            return None
        return {(e["mac"], e.get("dst")) for e in json.loads(out or "[]")}

    def neighbours(self):
        try:
            out = self.ns("ip", "-j", "neigh", "show", "dev", "vxlan-%d" % VNI)
        except subprocess.CalledProcessError:
            return set()
        return {(e["dst"], e.get("lladdr")) for e in json.loads(out or "[]")}

    def test_our_agent_follows_neutron(self):
        self.agent = None
        try:
            self.scenario()
        except AssertionError as error:
            # Every failure shows what the agent logged (the last process's).
            log = self.agent.output() if self.agent else ""
            raise AssertionError("%s\nagent log:\n%s" % (error, log)) from error

    def start_agent(self):
        self.agent = Agent(self.host, self.netns, self.vhost.amqp)
        self.addCleanup(self.agent.stop)
        return self.agent

    def scenario(self):
        agent = self.start_agent()

        # report_state reaches AgentExtRpcCallback: Neutron sees a live Linux bridge agent.
        row = self.wait("neutron sees the agent", lambda: self.agent_row(self.host), agent)
        self.assertTrue(row["alive"], row)
        self.assertEqual("Linux bridge agent", row["agent_type"])
        self.assertEqual(LOCAL_VTEP, row["configurations"]["tunneling_ip"])
        self.assertEqual(["vxlan"], row["configurations"]["tunnel_types"])
        helpers.register_linuxbridge_agent(host=self.remote, tunneling_ip=REMOTE_VTEP)

        net = self._make_network(
            self.fmt,
            "net-beside",
            True,
            as_admin=True,
            arg_list=(pnet.NETWORK_TYPE, pnet.SEGMENTATION_ID),
            **{pnet.NETWORK_TYPE: "vxlan", pnet.SEGMENTATION_ID: VNI},
        )["network"]
        self._make_subnet(self.fmt, {"network": net}, gateway=None, cidr="10.71.0.0/24", enable_dhcp=False)
        remote1 = self.make_port(net, self.remote, "fa:16:3e:72:00:01", "10.71.0.21")
        self.remote_up(remote1)
        local = self.make_port(net, self.host, "fa:16:3e:71:00:01", "10.71.0.11")
        self.assertEqual("bridge", local[portbindings.VIF_TYPE], "bound by the linuxbridge driver to our agent")

        # The VM's tap appears: the agent learns its network (get_devices_details_list_and_
        # failed_devices), wires it and reports it up; Neutron's l2population then host-casts
        # the full FDB: the remote port's flood and unicast entries.
        tap = "tap" + local["id"][:11]
        self.ns("ip", "link", "add", tap, "type", "veth", "peer", "name", "vm" + local["id"][:11])

        def active():
            return self.plugin.get_port(self.ctx, local["id"])["status"] == "ACTIVE"

        self.wait("the port ACTIVE in Neutron", active, agent)
        flood = (FLOOD_MAC, REMOTE_VTEP)
        unicast1 = (remote1["mac_address"], REMOTE_VTEP)
        self.wait("the host cast's entries in the kernel", lambda: {flood, unicast1} <= (self.fdb() or set()), agent)
        self.wait(
            "the ARP proxy entry in the kernel",
            lambda: ("10.71.0.21", remote1["mac_address"]) in self.neighbours(),
            agent,
        )
        self.assertNotIn((local["mac_address"], LOCAL_VTEP), self.fdb(), "its own port is not a remote entry")

        # A second remote port comes up: a fanout.
        remote2 = self.make_port(net, self.remote, "fa:16:3e:72:00:02", "10.71.0.22")
        self.remote_up(remote2)
        unicast2 = (remote2["mac_address"], REMOTE_VTEP)
        self.wait("the fanout's entry in the kernel", lambda: unicast2 in (self.fdb() or set()), agent)

        # It goes down: Neutron's remove_fdb_entries takes it out, the rest stays.
        self.callbacks.update_device_down(self.ctx, agent_id=self.remote, device=remote2["id"], host=self.remote)
        self.wait("the removal applied", lambda: unicast2 not in (self.fdb() or {unicast2}), agent)
        self.assertLessEqual({flood, unicast1}, self.fdb())

        # A restart from nothing (the VXLAN device and its entries gone with the old process):
        # the first update_device_up carries refresh_tunnels, and Neutron's l2population
        # host-casts the full FDB again.
        agent.stop()
        self.ns("ip", "link", "del", "vxlan-%d" % VNI)
        self.assertIsNone(self.fdb())
        agent = self.start_agent()
        self.wait("the full FDB again after a restart", lambda: {flood, unicast1} <= (self.fdb() or set()), agent)
        self.assertNotIn(unicast2, self.fdb())

        # Still alive, its heartbeats on q-reports-plugin now counting the wired tap.
        row = self.wait(
            "a heartbeat counting the tap",
            lambda: (lambda r: r if r["configurations"].get("devices") == 1 else None)(self.agent_row(self.host)),
            agent,
        )
        self.assertTrue(row["alive"], row)
