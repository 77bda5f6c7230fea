"""One scripted sequence through Neutron's real ML2 plugin, with one l2pop driver.

:func:`run` executes a script in Neutron's own unit-test harness (``Ml2PluginV2TestCase``: the
real ML2 plugin, a real database schema, Neutron's API layer, agents registered through
``create_or_update_agent`` and devices reported through the agent RPC callbacks
``update_device_up/down``), with ``mechanism_drivers`` = ``openvswitch`` plus either Neutron's
``l2population`` or our ``l2pop_server``, and the oslo.messaging transport pointed at the real
RabbitMQ instead of Neutron's ``fake:/``. After every step it waits until every cast the step
caused has arrived (Neutron: a sentinel cast on the notifier's own transport; l2pop: the
journal delivered and the server's stream positions received), applies them to one
:class:`support.AgentTable` per host, and records every host's table.

Script steps (names are the script's; ids, hosts and VTEPs are made per run):

    ("agent", host, vtep)              an OVS agent reports (tunnel_types ["vxlan"]); again
                                       for a known host: its tunneling_ip changed
    ("restart_agent", host)            its table is lost; it reports with start_flag, then every
                                       ACTIVE port of the host up with refresh_tunnels (OVS's
                                       first loop)
    ("network", net, vni)              a vxlan network (provider attributes)
    ("subnet", net, cidr[, gateway])
    ("port", port, net, host, mac, ips)  a compute port bound to host
    ("up", port) / ("down", port)      the port's host reports the device up / down
    ("move", port, host)               binding:host_id changes (migration)
    ("ips", port, ips)                 fixed IPs replaced
    ("unbind", port)                   binding:host_id cleared
    ("mac", port, mac)                 MAC changed (Neutron: only on an unbound port)
    ("delete", port) / ("delete_network", net)
    ("delete_subnet", net, cidr)       a subnet no port has an address in
    ("segment", net, vni)              a vxlan segment added to the network (the segments
                                       service plugin's create_segment)
    ("delete_segment", net, vni)       the network's segment with that id deleted (its network
                                       body read again: its provider attributes may change)
    ("dvr_port", port, net, mac, ips)  a DVR router interface (network:router_interface_distributed)
    ("dvr_bind", port, host)           its DistributedPortBinding on host (as the L3 DVR
                                       scheduler makes it: update_distributed_port_binding)
    ("dvr_up", port, host) / ("dvr_down", port, host)  host's agent reports the device up / down
    ("ha_router", router, hosts)       an HA router hosted by the L3 agents of ``hosts`` (as
                                       Neutron's l2pop tests make one: FakeL3PluginWithAgents,
                                       create_ha_port_and_bind, its HA network ports bound)
    ("ha_interface", port, router, net)  its interface on ``net`` (add_router_interface by the
                                       subnet, whose gateway address it takes): an
                                       ``network:ha_router_replicated_interface`` port
    ("ha_active", router, host)        the router is active on host (update_routers_states):
                                       the interfaces are bound there
    ("ha_up", port, host)              host's agent reports the interface up (plugged on every
                                       host of the router: each of them has the network)
    ("ha_leave", router, host)         host's L3 agent no longer hosts the router
                                       (remove_router_from_l3_agent: its HA port is deleted)
    ("kill_server",) / ("start_server",)  l2pop only: SIGKILL the server / start it again
    ("discard_journal",)               l2pop only: the journal so far is lost (driver not yet
                                       installed: a cloud moving from Neutron's l2population)
    ("full_sync",)                     l2pop only: networking_l2pop.sync.full_sync
"""

import json
import time
import unittest
import uuid
from unittest import mock

from neutron_lib import constants as const
from neutron_lib import context as n_context
from neutron_lib import fixture as nl_fixture
from neutron_lib.agent import topics
from neutron_lib.api import attributes
from neutron_lib.api.definitions import network_ha
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.db import api as db_api
from neutron_lib.plugins import constants as plugin_constants
from neutron_lib.plugins import directory
from oslo_config import cfg

from neutron.db import agents_db
from neutron.db import l3_agentschedulers_db
from neutron.db import l3_hamode_db
from neutron.db import segments_db
from neutron.plugins.ml2 import managers
from neutron.plugins.ml2 import rpc as ml2_rpc
from neutron.scheduler import l3_agent_scheduler
from neutron.services.segments import db as segments_plugin_db
from neutron.tests.common import helpers
from neutron.tests.unit.plugins.ml2 import test_plugin

from networking_l2pop import config as l2pop_config
from networking_l2pop import journal
from networking_l2pop import sync
from networking_l2pop.db import models  # noqa: F401  (tables created by Neutron's fixture)

from tests import support

NEUTRON = ["openvswitch", "l2population"]
L2POP = ["openvswitch", "l2pop_server"]
COMPUTE = "compute:nova"
DVR_INTERFACE = "network:router_interface_distributed"
SENTINEL = "l2pop_test_sentinel"


class FakeL3PluginWithAgents(
    l3_hamode_db.L3_HA_NAT_db_mixin, l3_agentschedulers_db.L3AgentSchedulerDbMixin, agents_db.AgentDbMixin
):
    """The L3 plugin of Neutron's own l2pop tests (test_mech_driver.py): L3 HA on the real DB."""


class RabbitRPCFixture(nl_fixture.RPCFixture):
    """Neutron's RPCFixture on the real broker (no RPC servers are started)."""

    server = None

    def _setUp(self):
        mock.patch.object(nl_fixture.rpc.Connection, "consume_in_threads", return_value=[]).start()
        from oslo_messaging import conffixture

        self.messaging_conf = conffixture.ConfFixture(cfg.CONF)
        self.messaging_conf.transport_url = support.oslo_url()
        self.useFixture(self.messaging_conf)
        self.addCleanup(nl_fixture.rpc.cleanup)
        nl_fixture.rpc.init(cfg.CONF)
        # The driver's options, before the plugin (and the driver) is made.
        l2pop_config.register_opts()
        if RabbitRPCFixture.server is not None:
            for key, value in (
                ("url", RabbitRPCFixture.server.url),
                ("token", support.ADMIN_TOKEN),
                ("journal_thread", False),
                ("retry_interval", 0.05),
                ("max_retry_interval", 0.2),
                ("timeout", 5.0),
            ):
                cfg.CONF.set_override(key, value, group=l2pop_config.GROUP)


class _Run(test_plugin.Ml2PluginV2TestCase):
    """Runs ``self.script``; the views per step land in ``self.views``."""

    script = ()
    server = None
    views = None
    notes = None

    def preSetUp(self):
        patcher = mock.patch.object(nl_fixture, "RPCFixture", RabbitRPCFixture)
        patcher.start()
        self.addCleanup(patcher.stop)
        RabbitRPCFixture.server = self.server

    def runTest(self):
        self.views = []
        self.notes = []
        Runner(self).run(self.script)


class Runner:
    def __init__(self, case):
        self.case = case
        self.l2pop = "l2pop_server" in case._mechanism_drivers
        self.context = n_context.get_admin_context()
        self.callbacks = ml2_rpc.RpcCallbacks(ml2_rpc.AgentNotifierApi(topics.AGENT), managers.TypeManager())
        self.plugin = directory.get_plugin()
        self.suffix = uuid.uuid4().hex[:8]
        self.hosts = {}  # script host -> (real host name, vtep)
        self.tables = {}  # script host -> AgentTable
        self.networks = {}  # script net -> neutron network dict (while it exists)
        self.net_ids = {}  # script net -> neutron network id (for ever)
        self.ports = {}  # script port -> neutron port dict
        self.subnets = {}  # (script net, cidr) -> neutron subnet id
        self.dvr_hosts = {}  # script DVR port -> script hosts where it is up
        self.router_id = str(uuid.uuid4())  # device_id of the DVR ports
        self.wired = {}  # script host -> {neutron net id: set(script ports)}
        self.names = {}  # wire network id -> script net
        self.segments = {}  # wire network id -> (type, segment id)
        self.capture = None
        self.server_up = self.l2pop and case.server.process is not None
        self.seen_ids = set()
        self.l3 = None  # the L3 HA plugin, made by the first ha_router step
        self.routers = {}  # script router -> neutron router id
        self.router_hosts = {}  # script router -> script hosts of its L3 agents
        self.ha_ports = {}  # script HA interface -> script router

    # ---- helpers ----

    def host(self, name):
        return self.hosts[name][0]

    def driver(self, name):
        return self.plugin.mechanism_manager.mech_drivers[name].obj

    def port_host(self, port):
        return self.ports[port][portbindings.HOST_ID]

    def host_of_real(self, real):
        for name, (host, _) in self.hosts.items():
            if host == real:
                return name
        return None

    def local_networks(self, host):
        """{wire id: (type, segment)} of the networks the host has wired ports on."""
        wired = self.wired.get(host, {})
        return {wire: self.segments[wire] for wire, net in self.names.items() if self.net_ids[net] in wired}

    def refresh_port(self, port):
        body = self.case._show("ports", self.ports[port]["id"], as_admin=True)
        self.ports[port] = body["port"]

    # ---- the script ----

    def run(self, script):
        hosts = [step[1] for step in script if step[0] == "agent"]
        for name in hosts:
            self.hosts[name] = ("%s-%s" % (name, self.suffix), None)
        self.capture = support.CastCapture([self.host(h) for h in hosts])
        self.case.addCleanup(self.capture.close)
        for index, step in enumerate(script):
            before, after = self.wiring(step)
            for host, net, port in before:
                self.wired.setdefault(host, {}).setdefault(net, set()).add(port)
            getattr(self, "step_" + step[0])(*step[1:])
            self.settle(step)
            for host, net, port in after:
                ports = self.wired.get(host, {}).get(net, set())
                ports.discard(port)
                if not ports:
                    self.wired.get(host, {}).pop(net, None)
                    wire = self.wire_id(net)
                    if wire is not None:
                        self.tables[host].leave(wire)
            self.case.views.append((index, step, self.view()))

    def wiring(self, step):
        """(host, net id, port) wired before the step / unwired after it."""
        kind = step[0]
        if kind == "ha_up":
            # The interface is plugged on every host of its router (keepalived runs there).
            port = self.ports[step[1]]
            hosts = self.router_hosts[self.ha_ports[step[1]]]
            return [(host, port["network_id"], step[1]) for host in sorted(hosts)], []
        if kind == "ha_leave":
            leaving = [p for p, router in self.ha_ports.items() if router == step[1]]
            return [], [(step[2], self.ports[p]["network_id"], p) for p in leaving]
        if kind in ("dvr_up", "dvr_down"):
            net = self.ports[step[1]]["network_id"]
            return ([(step[2], net, step[1])], []) if kind == "dvr_up" else ([], [(step[2], net, step[1])])
        if kind == "delete" and step[1] in self.ha_ports:
            net = self.ports[step[1]]["network_id"]
            hosts = self.router_hosts[self.ha_ports[step[1]]]
            return [], [(host, net, step[1]) for host in sorted(hosts)]
        if kind == "delete" and step[1] in self.dvr_hosts:
            net = self.ports[step[1]]["network_id"]
            return [], [(host, net, step[1]) for host in sorted(self.dvr_hosts[step[1]])]
        if kind == "up":
            port = self.ports[step[1]]
            host = self.host_of_real(port[portbindings.HOST_ID])
            return [(host, port["network_id"], step[1])], []
        if kind in ("down", "delete", "move", "unbind"):
            port = self.ports[step[1]]
            host = self.host_of_real(port[portbindings.HOST_ID])
            if host is None:
                return [], []
            return [], [(host, port["network_id"], step[1])]
        return [], []

    def step_agent(self, name, vtep):
        """A report; for a known host, a changed tunneling_ip (its table is kept)."""
        self.hosts[name] = (self.host(name), vtep)
        if name in self.tables:
            self.tables[name].local_ip = vtep
        else:
            self.tables[name] = support.AgentTable(vtep)
        helpers.register_ovs_agent(
            host=self.host(name), tunneling_ip=vtep, tunnel_types=["vxlan"], start_flag=False
        )

    def step_restart_agent(self, name):
        # The restarted agent starts from nothing (new process, new fanout queue, stale flows
        # cleaned after its first loop): only what the refresh sends it fills its table again.
        self.tables[name] = support.AgentTable(self.hosts[name][1])
        helpers.register_ovs_agent(
            host=self.host(name), tunneling_ip=self.hosts[name][1], tunnel_types=["vxlan"], start_flag=True
        )
        for port, body in sorted(self.ports.items()):
            self.refresh_port(port)
            body = self.ports[port]
            bound = body[portbindings.HOST_ID] == self.host(name) and body["status"] == "ACTIVE"
            if bound or name in self.dvr_hosts.get(port, ()):
                self.callbacks.update_device_up(
                    self.context, agent_id=self.host(name), device=body["id"], host=self.host(name), refresh_tunnels=True
                )

    def step_network(self, net, vni):
        body = self.case._make_network(
            self.case.fmt,
            net,
            True,
            as_admin=True,
            arg_list=(pnet.NETWORK_TYPE, pnet.SEGMENTATION_ID),
            **{pnet.NETWORK_TYPE: "vxlan", pnet.SEGMENTATION_ID: vni},
        )
        self.networks[net] = body["network"]
        self.net_ids[net] = body["network"]["id"]

    def step_subnet(self, net, cidr, gateway=None):
        version = 6 if ":" in cidr else 4
        body = self.case._make_subnet(
            self.case.fmt,
            {"network": self.networks[net]},
            gateway=gateway,
            cidr=cidr,
            ip_version=version,
            enable_dhcp=False,
        )
        self.subnets[(net, cidr)] = body["subnet"]["id"]

    def step_delete_subnet(self, net, cidr):
        self.case._delete("subnets", self.subnets.pop((net, cidr)), as_admin=True)

    def step_segment(self, net, vni):
        unset = const.ATTR_NOT_SPECIFIED
        segment = {
            "network_id": self.networks[net]["id"],
            "network_type": "vxlan",
            "segmentation_id": vni,
            "physical_network": unset,
            "name": unset,
            "description": unset,
        }
        segments_plugin_db.SegmentDbMixin().create_segment(self.context, {"segment": segment})

    def step_delete_segment(self, net, vni):
        network_id = self.networks[net]["id"]
        segments = segments_db.get_network_segments(self.context, network_id)
        (segment,) = [s for s in segments if s[segments_db.SEGMENTATION_ID] == vni]
        segments_plugin_db.SegmentDbMixin().delete_segment(self.context, segment["id"])
        self.networks[net] = self.case._show("networks", network_id, as_admin=True)["network"]

    def step_port(self, port, net, host, mac, ips):
        body = self.case._make_port(
            self.case.fmt,
            self.networks[net]["id"],
            as_admin=True,
            arg_list=(portbindings.HOST_ID, "mac_address", "fixed_ips", "device_owner"),
            **{
                portbindings.HOST_ID: self.host(host),
                "mac_address": mac,
                "fixed_ips": [{"ip_address": ip} for ip in ips],
                "device_owner": COMPUTE,
            },
        )
        self.ports[port] = body["port"]

    def step_dvr_port(self, port, net, mac, ips):
        body = self.case._make_port(
            self.case.fmt,
            self.networks[net]["id"],
            as_admin=True,
            arg_list=("mac_address", "fixed_ips", "device_owner", "device_id"),
            **{
                "mac_address": mac,
                "fixed_ips": [{"ip_address": ip} for ip in ips],
                "device_owner": DVR_INTERFACE,
                "device_id": self.router_id,
            },
        )
        self.ports[port] = body["port"]
        self.dvr_hosts[port] = set()

    def step_dvr_bind(self, port, host):
        attributes = {portbindings.HOST_ID: self.host(host), "device_id": self.router_id}
        self.plugin.update_distributed_port_binding(self.context, self.ports[port]["id"], {"port": attributes})

    def step_dvr_up(self, port, host):
        real = self.host(host)
        self.callbacks.update_device_up(self.context, agent_id=real, device=self.ports[port]["id"], host=real)
        self.dvr_hosts[port].add(host)

    def step_dvr_down(self, port, host):
        real = self.host(host)
        self.callbacks.update_device_down(self.context, agent_id=real, device=self.ports[port]["id"], host=real)
        self.dvr_hosts[port].discard(host)

    def l3_plugin(self):
        """The L3 HA plugin, set up as Neutron's l2pop tests do (``_setup_l3``)."""
        if self.l3 is None:
            patcher = mock.patch.object(l3_hamode_db.L3_HA_NAT_db_mixin, "_notify_router_updated")
            patcher.start()
            self.case.addCleanup(patcher.stop)
            saved = dict(attributes.RESOURCES[network_ha.COLLECTION_NAME])
            attributes.RESOURCES[network_ha.COLLECTION_NAME].update(
                network_ha.RESOURCE_ATTRIBUTE_MAP[network_ha.COLLECTION_NAME]
            )

            def restore():
                attributes.RESOURCES[network_ha.COLLECTION_NAME].clear()
                attributes.RESOURCES[network_ha.COLLECTION_NAME].update(saved)

            self.case.addCleanup(restore)
            self.l3 = FakeL3PluginWithAgents()
            directory.add_plugin(plugin_constants.L3, self.l3)
        return self.l3

    def l3_agent(self, host):
        agents = self.l3.get_agent_objects(
            self.context, filters={"agent_type": [const.AGENT_TYPE_L3], "host": [self.host(host)]}
        )
        return agents[0]

    def step_ha_router(self, router, hosts):
        l3 = self.l3_plugin()
        for host in hosts:
            helpers.register_l3_agent(host=self.host(host))
        context = n_context.get_admin_context()
        context.tenant_id = "tenant1"
        body = l3.create_router(
            context, {"router": {"name": router, "admin_state_up": True, "tenant_id": "tenant1", "ha": True}}
        )
        self.routers[router] = body["id"]
        self.router_hosts[router] = set(hosts)
        scheduler = l3_agent_scheduler.ChanceScheduler()
        for host in hosts:
            scheduler.create_ha_port_and_bind(l3, self.context, body["id"], "tenant1", self.l3_agent(host))
        agents = {self.l3_agent(host).id: self.host(host) for host in hosts}
        for binding in l3.get_ha_router_port_bindings(self.context, [body["id"]]):
            attributes_ = {portbindings.HOST_ID: agents[binding.l3_agent_id]}
            self.plugin.update_port(self.context, binding.port_id, {"port": attributes_})

    def step_ha_interface(self, port, router, net):
        subnet = next(sid for (name, _), sid in self.subnets.items() if name == net)
        self.l3.add_router_interface(self.context, self.routers[router], {"subnet_id": subnet})
        found = self.plugin.get_ports(
            self.context,
            filters={"device_id": [self.routers[router]], "device_owner": [const.DEVICE_OWNER_HA_REPLICATED_INT]},
        )
        self.ports[port] = next(p for p in found if p["network_id"] == self.networks[net]["id"])
        self.ha_ports[port] = router

    def step_ha_active(self, router, host):
        self.l3.update_routers_states(
            self.context, {self.routers[router]: const.HA_ROUTER_STATE_ACTIVE}, self.host(host)
        )
        for port, owner in self.ha_ports.items():
            if owner == router:
                self.refresh_port(port)

    def step_ha_up(self, port, host):
        real = self.host(host)
        self.callbacks.update_device_up(self.context, agent_id=real, device=self.ports[port]["id"], host=real)
        self.refresh_port(port)

    def step_ha_leave(self, router, host):
        self.l3.remove_router_from_l3_agent(self.context, self.l3_agent(host).id, self.routers[router])
        self.router_hosts[router].discard(host)

    def step_up(self, port):
        host = self.port_host(port)
        self.callbacks.update_device_up(self.context, agent_id=host, device=self.ports[port]["id"], host=host)
        self.refresh_port(port)

    def step_down(self, port):
        host = self.port_host(port)
        self.callbacks.update_device_down(self.context, agent_id=host, device=self.ports[port]["id"], host=host)
        self.refresh_port(port)

    def _update(self, port, attributes):
        body = self.case._update("ports", self.ports[port]["id"], {"port": attributes}, as_admin=True)
        self.ports[port] = body["port"]

    def step_move(self, port, host):
        self._update(port, {portbindings.HOST_ID: self.host(host)})

    def step_unbind(self, port):
        self._update(port, {portbindings.HOST_ID: ""})

    def step_ips(self, port, ips):
        self._update(port, {"fixed_ips": [{"ip_address": ip} for ip in ips]})

    def step_mac(self, port, mac):
        self._update(port, {"mac_address": mac})

    def step_delete(self, port):
        self.case._delete("ports", self.ports.pop(port)["id"], as_admin=True)
        self.dvr_hosts.pop(port, None)

    def step_delete_network(self, net):
        self.case._delete("networks", self.networks.pop(net)["id"], as_admin=True)

    def step_kill_server(self):
        if self.l2pop:
            self.case.server.kill()
            self.server_up = False

    def step_start_server(self):
        if self.l2pop:
            self.case.server.start()
            self.server_up = True

    def step_discard_journal(self):
        """l2pop only: what the driver journalled so far is lost (it was not installed yet)."""
        if self.l2pop:
            with db_api.CONTEXT_WRITER.using(self.context):
                self.context.session.query(models.L2popJournal).delete()
                self.context.session.query(models.L2popAgent).delete()

    def step_full_sync(self):
        if self.l2pop:
            sync.full_sync(self.plugin, self.context, self.driver("l2pop_server"))

    # ---- casts ----

    def wire_id(self, neutron_net_id):
        for wire, net in self.names.items():
            if self.net_ids[net] == neutron_net_id:
                return wire
        return None

    def learn_networks(self):
        """Wire ids of the scenario's networks (Neutron's, or l2pop's named after them), and
        their segments as Neutron has them."""
        by_id = {neutron_id: net for net, neutron_id in self.net_ids.items()}
        if not self.l2pop:
            for net, body in self.networks.items():
                self.names[body["id"]] = net
                self.segments[body["id"]] = (body[pnet.NETWORK_TYPE], body[pnet.SEGMENTATION_ID])
            return
        for network in self.case.server.get("/v2.0/networks")["networks"]:
            net = by_id.get(network["name"])
            if net is not None:
                self.names[network["id"]] = net
                # An agent knows its network's segment from Neutron (the port's bound
                # segment): casts that name another are not for it.
                known = self.networks.get(net, network)
                self.segments[network["id"]] = (known["provider:network_type"], known["provider:segmentation_id"])

    def ours(self, cast):
        if cast.method == SENTINEL:
            return False
        if cast.host is not None and self.host_of_real(cast.host) is None:
            return False
        wanted = support.networks_of(cast.method, cast.fdb_entries)
        return bool(wanted) and wanted <= set(self.names)

    def settle(self, step):
        """Waits for every cast of the step and applies it to the hosts' tables."""
        if not self.l2pop:
            self.learn_networks()
            token = uuid.uuid4().hex
            notifier = self.driver("l2population").L2populationAgentNotify
            notifier._notification_fanout(self.context, SENTINEL, {"sentinel": token})
            casts = self.capture.until(
                lambda got: any(c.method == SENTINEL and c.fdb_entries.get("sentinel") == token for c in got),
                "the sentinel after %r" % (step,),
            )
        else:
            if not self.server_up:
                self.case.driver_journal_attempt(self)
                return
            self.case.deliver_journal(self)
            self.learn_networks()
            casts = self.capture.until(self.caught_up(), "the l2pop server's positions after %r" % (step,))
        applied = []
        for cast in casts:
            if not self.ours(cast) or not self.fresh(cast):
                continue
            applied.append((cast.host, cast.method, json.dumps(cast.fdb_entries, sort_keys=True)))
            targets = [self.host_of_real(cast.host)] if cast.host else list(self.tables)
            for host in targets:
                self.tables[host].apply(cast, self.local_networks(host))
        self.case.casts.append((step, applied))

    def fresh(self, cast):
        """Drops a cast seen before (a server republishes above its watermark after a restart;
        oslo.messaging receivers drop such repeats by ``_unique_id``)."""
        if cast.unique_id is None or not self.l2pop:
            return True
        if cast.unique_id in self.seen_ids:
            return False
        self.seen_ids.add(cast.unique_id)
        return True

    def caught_up(self):
        """A predicate: the casts hold the server's current fanout and host positions."""
        any_host = next(iter(self.hosts.values()))[0]
        fanout = self.case.server.get("/v2.0/l2pop/hosts/%s/fdb" % any_host)["fdb"]["fanout_seq"]
        hosts = {}
        for name, (host, _) in self.hosts.items():
            hosts[host] = self.case.server.get("/v2.0/l2pop/hosts/%s/fdb" % host)["fdb"]["host_seq"]
        state = {"fanout": 0, "hosts": {}}

        def done(casts):
            for cast in casts:
                if not self.ours(cast) or cast.position is None:
                    continue
                if cast.host is None:
                    state["fanout"] = max(state["fanout"], cast.position["fanout_seq"])
                else:
                    seen = state["hosts"].get(cast.host, 0)
                    state["hosts"][cast.host] = max(seen, cast.position.get("host_seq") or 0)
            return self.position_reached(state, fanout, hosts)

        return done

    def position_reached(self, state, fanout, hosts):
        reached = max(self.case.positions["fanout"], state["fanout"])
        if reached < fanout:
            return False
        for host, seq in hosts.items():
            if max(self.case.positions["hosts"].get(host, 0), state["hosts"].get(host, 0)) < seq:
                return False
        self.case.positions["fanout"] = reached
        for host, seq in state["hosts"].items():
            self.case.positions["hosts"][host] = max(self.case.positions["hosts"].get(host, 0), seq)
        return True

    def view(self):
        def rename(wire):
            return self.names.get(wire, wire)

        return {name: table.view(rename) for name, table in sorted(self.tables.items())}


def run(drivers, script, server=None):
    """Runs ``script`` with ``drivers``; (views per step, the run's TestCase)."""

    class Run(_Run):
        _mechanism_drivers = drivers

        def driver_journal_attempt(self, runner):
            driver = runner.driver("l2pop_server")
            driver.journal.deliver_pending()
            self.pending.append(journal.pending_count(runner.context))

        def deliver_journal(self, runner):
            driver = runner.driver("l2pop_server")
            deadline = time.monotonic() + support.PATIENCE
            while True:
                wait = driver.journal.deliver_pending()
                if wait is None and journal.pending_count(runner.context) == 0:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        "journal not delivered: %d pending, failed %r"
                        % (journal.pending_count(runner.context), journal.failed_rows(runner.context))
                    )
                time.sleep(min(wait or 0.05, 0.2))
            self.failed.extend(journal.failed_rows(runner.context))

    Run.script = script
    Run.server = server
    case = Run()
    case.positions = {"fanout": 0, "hosts": {}}
    case.casts = []  # (step, [(host or None, method, payload)]) as applied
    case.pending = []
    case.failed = []
    result = unittest.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    if problems:
        raise AssertionError(
            "the %s run failed:\n%s" % ("+".join(drivers), "\n".join(text for _, text in problems))
        )
    return case.views, case
