"""The ML2 mechanism driver ``l2pop_server``: Neutron's l2population job, journalled to l2pop.

What is journalled (precommit, in the transaction of the change), and how l2pop reads it:

- network create/delete, with the network's first segment (type, segmentation id,
  physical network, and its id, which l2pop gives the network's segment 0 as its name);
- segment create/delete (``resources.SEGMENT`` PRECOMMIT_CREATE/PRECOMMIT_DELETE, the segments
  service plugin's ``/v2.0/segments``; a network create's later segments, multiprovidernet):
  l2pop serves a network on its first segment and takes every port as bound to it; deleting
  the first moves the network to the next. Dynamic segments (hierarchical binding) and the
  segment deletes of a network delete are not sent;
- subnet create/delete (the CIDR: l2pop checks that fixed IPs lie in a subnet of the network);
- port create/update/delete with the attributes l2pop reads (MAC, fixed IPs, device_owner,
  device_id, binding host, admin_state_up); an update journals only what changed;
- port status: DOWN/BUILD→ACTIVE is a device ``up`` from the binding host, ACTIVE→DOWN a
  device ``down`` from the host it was on (before the update that moved it), as Neutron's
  agents report them through ``update_device_up/down``;
- DVR interface ports (``network:router_interface_distributed``): the status of each
  host's ``DistributedPortBinding``, as ``up``/``down`` from that host (rule 11);
- ``refresh_tunnels``: Neutron hands it only to the mechanism driver registered as
  ``l2population`` (``neutron/plugins/ml2/rpc.py: notify_l2pop_port_wiring``). This driver
  answers to that name too (an alias in the plugin's driver table, only when Neutron's own
  driver is not loaded) and journals a refresh ``up`` for each such device;
- HA routers: the hosts of an HA router's L3 agents are the binding hosts of its HA network
  ports (``network:router_ha_interface``, ``device_id`` = the router), which pass through this
  driver like every port. On their create, update (host or router changed) and delete, a
  ``router put`` row with the router's present hosts (queried in the same transaction) and
  ``ha: true``; a router with no HA port left, a ``router delete``. l2pop's engine then counts
  the router's HA interfaces (``network:ha_router_replicated_interface``, and its
  ``network:router_centralized_snat``) on every one of those hosts (reference D5, D6, rule 12);
- L2 agent reports (``resources.AGENT`` callbacks, after Neutron's commit): tunneling_ip,
  tunnel_types, l2pop_network_types, start_flag — only when they differ from what l2pop was
  last told (table ``l2pop_agents``) or the agent restarted; a heartbeat journals nothing.

The MAC guard of Neutron's driver (rule 14: no MAC change on an ACTIVE port) is kept, in
precommit, so that Neutron refuses what l2pop would refuse.
"""

import json

import sqlalchemy as sa

from neutron_lib import constants as const
from neutron_lib import context as n_context
from neutron_lib import exceptions
from neutron_lib.callbacks import events
from neutron_lib.callbacks import registry
from neutron_lib.callbacks import resources
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from neutron.db import models_v2
from neutron.plugins.ml2 import models as ml2_models
from oslo_config import cfg
from oslo_log import log as logging

from neutron.db import segments_db

from networking_l2pop import config
from networking_l2pop import journal
from networking_l2pop import translate
from networking_l2pop.db import models

LOG = logging.getLogger(__name__)

NEUTRON_L2POP = "l2population"
# Network types the l2pop server knows; others in an agent report are left out.
KNOWN_TYPES = ("vxlan", "gre", "geneve", "vlan", "flat", "local")
AGENT_KEYS = ("tunneling_ip", "tunnel_types", "l2pop_network_types")


class _Alias:
    """What ``mech_drivers['l2population']`` holds in Neutron: a name and the driver."""

    def __init__(self, obj):
        self.name = NEUTRON_L2POP
        self.obj = obj


def project_of(resource):
    return resource.get("project_id") or resource.get("tenant_id") or cfg.CONF[config.GROUP].default_project_id


def segment_fields(segment, network_id):
    """The journal form of a segment (a dict or Neutron's ``NetworkSegment`` object)."""

    def get(key):
        return segment.get(key) if isinstance(segment, dict) else getattr(segment, key, None)

    return {
        "id": get("id"),
        "network_id": network_id,
        "network_type": get(api.NETWORK_TYPE),
        "segmentation_id": get(api.SEGMENTATION_ID),
        "physical_network": get(api.PHYSICAL_NETWORK),
    }


def network_row(network, segment):
    """The journal form of a network create with its first segment."""
    return {
        "id": network["id"],
        "project_id": project_of(network),
        "network_type": segment[api.NETWORK_TYPE],
        "segmentation_id": segment.get(api.SEGMENTATION_ID),
        "physical_network": segment.get(api.PHYSICAL_NETWORK),
        "segment_id": segment.get("id"),
    }


def port_fields(port):
    """The attributes of a Neutron port dict that l2pop reads (journal form)."""
    return {
        "mac_address": port["mac_address"],
        "fixed_ips": [ip["ip_address"] for ip in port.get("fixed_ips", [])],
        "device_owner": port.get("device_owner", ""),
        "device_id": port.get("device_id", ""),
        "host": port.get("binding:host_id") or None,
        "admin_state_up": port.get("admin_state_up", True),
    }


def ha_router_ports(plugin_context, router, exclude=None):
    """The active binding's host (None: unbound) of each of ``router``'s HA network ports but
    ``exclude``, read in the caller's transaction."""
    binding = ml2_models.PortBinding
    query = (
        plugin_context.session.query(models_v2.Port.id, binding.host)
        .outerjoin(
            binding,
            sa.and_(binding.port_id == models_v2.Port.id, binding.status == const.ACTIVE),
        )
        .filter(models_v2.Port.device_owner == const.DEVICE_OWNER_ROUTER_HA_INTF)
        .filter(models_v2.Port.device_id == router)
    )
    return [host or None for port_id, host in query if port_id != exclude]


def router_row(router, hosts):
    """(operation, data) of the journal row for ``router`` whose HA ports have ``hosts``."""
    if not hosts:
        return translate.DELETE, {"id": router}
    return translate.PUT, {"id": router, "ha": True, "hosts": sorted({h for h in hosts if h})}


class L2popServerMechanismDriver(api.MechanismDriver):
    def initialize(self):
        config.register_opts()
        self.journal = journal.Journal()
        self._aliased = False
        for event in (events.AFTER_CREATE, events.AFTER_UPDATE):
            registry.subscribe(self._agent_reported, resources.AGENT, event)
        registry.subscribe(self._agent_deleted, resources.AGENT, events.AFTER_DELETE)
        registry.subscribe(self._process_started, resources.PROCESS, events.AFTER_INIT)
        registry.subscribe(self._segment_created, resources.SEGMENT, events.PRECOMMIT_CREATE)
        registry.subscribe(self._segment_deleted, resources.SEGMENT, events.PRECOMMIT_DELETE)

    # ---- plumbing ----

    def _process_started(self, resource, event, trigger, payload=None):
        self._ensure_alias()
        self.journal.kick()

    def _ensure_alias(self):
        """Answer to Neutron's ``l2population`` lookups (refresh_tunnels) when it is not loaded."""
        if self._aliased:
            return
        plugin = directory.get_plugin()
        manager = getattr(plugin, "mechanism_manager", None)
        if manager is None:
            return
        current = manager.mech_drivers.get(NEUTRON_L2POP)
        if current is None:
            manager.mech_drivers[NEUTRON_L2POP] = _Alias(self)
        elif current.obj is not self:
            LOG.error(
                "both Neutron's l2population and l2pop_server are in mechanism_drivers: "
                "agents get every l2pop cast twice, from two owners; remove l2population"
            )
        self._aliased = True

    def _record(self, context, object_type, object_uuid, operation, data):
        self._ensure_alias()
        journal.record(context._plugin_context, object_type, object_uuid, operation, data)

    def _kick(self, context=None):
        self.journal.kick()

    # ---- networks, subnets ----

    def create_network_precommit(self, context):
        network = context.current
        segments = context.network_segments or []
        if not segments:
            LOG.warning("network %s has no segment: not sent to l2pop", network["id"])
            return
        self._record(
            context, translate.NETWORK, network["id"], translate.CREATE, network_row(network, segments[0])
        )
        for segment in segments[1:]:
            data = segment_fields(segment, network["id"])
            self._record(context, translate.SEGMENT, data["id"], translate.CREATE, data)

    create_network_postcommit = _kick

    def delete_network_precommit(self, context):
        network = context.current
        self._record(context, translate.NETWORK, network["id"], translate.DELETE, {"id": network["id"]})

    delete_network_postcommit = _kick

    def create_subnet_precommit(self, context):
        subnet = context.current
        self._record(
            context,
            translate.SUBNET,
            subnet["id"],
            translate.CREATE,
            {
                "id": subnet["id"],
                "network_id": subnet["network_id"],
                "cidr": subnet["cidr"],
                "project_id": project_of(subnet),
            },
        )

    create_subnet_postcommit = _kick

    def delete_subnet_precommit(self, context):
        subnet = context.current
        self._record(
            context,
            translate.SUBNET,
            subnet["id"],
            translate.DELETE,
            {"id": subnet["id"], "network_id": subnet["network_id"]},
        )

    delete_subnet_postcommit = _kick

    def _segment_created(self, resource, event, trigger, payload=None):
        # A network create's segments come with the network (create_network_precommit); a
        # dynamic segment (hierarchical binding) is no segment l2pop serves.
        if trigger is segments_db.add_network_segment:
            return
        segment = payload.states[0]
        data = segment_fields(segment, getattr(segment, "network_id", None))
        self._ensure_alias()
        journal.record(payload.context, translate.SEGMENT, data["id"], translate.CREATE, data)
        self.journal.kick()

    def _segment_deleted(self, resource, event, trigger, payload=None):
        # A network delete deletes its segments: l2pop's go with the network.
        if (payload.metadata or {}).get("for_net_delete"):
            return
        segment = payload.states[0]
        data = {"id": segment["id"], "network_id": segment["network_id"]}
        self._ensure_alias()
        journal.record(payload.context, translate.SEGMENT, data["id"], translate.DELETE, data)
        self.journal.kick()

    # ---- HA routers ----

    def _ha_router_changed(self, context, port, original=None, deleted=False):
        """Journals the router of HA network port ``port`` (and of ``original``'s, if another)."""
        routers = []
        for candidate in (original, port):
            if candidate is not None and candidate.get("device_owner") == const.DEVICE_OWNER_ROUTER_HA_INTF:
                if candidate.get("device_id") and candidate["device_id"] not in routers:
                    routers.append(candidate["device_id"])
        for router in routers:
            ports = ha_router_ports(context._plugin_context, router, exclude=port["id"])
            mine = port.get("device_owner") == const.DEVICE_OWNER_ROUTER_HA_INTF and port.get("device_id") == router
            if mine and not deleted:
                ports.append(port.get("binding:host_id") or None)
            self._record(context, translate.ROUTER, router, *router_row(router, ports))

    # ---- ports ----

    def create_port_precommit(self, context):
        port = context.current
        data = port_fields(port)
        if port.get("device_owner") == const.DEVICE_OWNER_DVR_INTERFACE:
            data["host"] = None  # its hosts come with its per-host bindings
        data.update(id=port["id"], network_id=port["network_id"], project_id=project_of(port))
        self._record(context, translate.PORT, port["id"], translate.CREATE, data)
        if port.get("status") == const.PORT_STATUS_ACTIVE and data["host"]:
            self._record(context, translate.PORT, port["id"], translate.UP, {"id": port["id"], "host": data["host"]})
        self._ha_router_changed(context, port)

    create_port_postcommit = _kick

    def update_port_precommit(self, context):
        port, original = context.current, context.original
        if original["mac_address"] != port["mac_address"] and context.status == const.PORT_STATUS_ACTIVE:
            raise exceptions.InvalidInput(
                error_message="unable to modify mac_address of ACTIVE port %s" % port["id"]
            )
        if port.get("device_owner") == const.DEVICE_OWNER_DVR_INTERFACE:
            self._update_distributed_port(context)
            return
        now, before = port_fields(port), port_fields(original)
        changed = {key: value for key, value in now.items() if before[key] != value}
        status, original_status = context.status, context.original_status
        active = const.PORT_STATUS_ACTIVE
        if original_status == active and status == const.PORT_STATUS_DOWN and before["host"]:
            self._record(
                context, translate.PORT, port["id"], translate.DOWN, {"id": port["id"], "host": before["host"]}
            )
        if changed:
            changed["id"] = port["id"]
            self._record(context, translate.PORT, port["id"], translate.UPDATE, changed)
        if {"host", "device_id", "device_owner"} & set(changed):
            self._ha_router_changed(context, port, original)
        if status == active and original_status != active and now["host"]:
            self._record(context, translate.PORT, port["id"], translate.UP, {"id": port["id"], "host": now["host"]})

    update_port_postcommit = _kick

    def _update_distributed_port(self, context):
        """A DVR interface port: one update per host binding (``DistributedPortBinding``).

        ML2 calls this for each host's binding: when an agent reports the device up or down on
        that host (``context.status`` is the binding's status, ``context.host`` its host), when
        the binding is made (DOWN), and once per binding on an API update of the port. Neutron's
        l2population announces the host's presence on every such call with an ACTIVE binding and
        withdraws it on every DOWN one (rule 11); l2pop's engine keeps the set of hosts with an
        ACTIVE binding, so a repeated ``up`` or a ``down`` from a host not in it changes nothing.
        The port's own ``binding:host_id`` means nothing for a DVR port and is not sent.
        """
        port, original = context.current, context.original
        now, before = port_fields(port), port_fields(original)
        del now["host"], before["host"]
        changed = {key: value for key, value in now.items() if before[key] != value}
        if changed:
            changed["id"] = port["id"]
            self._record(context, translate.PORT, port["id"], translate.UPDATE, changed)
        host = context.host
        if not host:
            return
        if context.status == const.PORT_STATUS_ACTIVE:
            self._record(context, translate.PORT, port["id"], translate.UP, {"id": port["id"], "host": host})
        elif context.status == const.PORT_STATUS_DOWN:
            self._record(context, translate.PORT, port["id"], translate.DOWN, {"id": port["id"], "host": host})

    def delete_port_precommit(self, context):
        port = context.current
        self._record(context, translate.PORT, port["id"], translate.DELETE, {"id": port["id"]})
        self._ha_router_changed(context, port, deleted=True)

    delete_port_postcommit = _kick

    # ---- what Neutron's agent RPC hands "l2population" (notify_l2pop_port_wiring) ----

    def update_port_up(self, context, refresh_tunnels=False):
        """A device reported up; the status change was journalled already, a refresh is not."""
        if not refresh_tunnels:
            return
        port = context.current
        host = context.host or port.get("binding:host_id")
        if not host:
            return
        plugin_context = context._plugin_context
        with db_api.CONTEXT_WRITER.using(plugin_context):
            journal.record(
                plugin_context,
                translate.PORT,
                port["id"],
                translate.UP,
                {"id": port["id"], "host": host, "refresh_tunnels": True},
            )
        self.journal.kick()

    def update_port_down(self, context):
        """The status change to DOWN was journalled in update_port_precommit."""

    # ---- L2 agents ----

    def _agent_reported(self, resource, event, trigger, payload):
        state = payload.desired_state or {}
        configurations = state.get("configurations") or {}
        if not any(key in configurations for key in AGENT_KEYS):
            return  # not an L2 agent (DHCP, L3, metadata...): l2pop reads nothing of it
        types = configurations.get("l2pop_network_types")
        fields = {
            "tunneling_ip": configurations.get("tunneling_ip") or None,
            "tunnel_types": [t for t in configurations.get("tunnel_types") or [] if t in KNOWN_TYPES],
            "l2pop_network_types": None if types is None else [t for t in types if t in KNOWN_TYPES],
        }
        self._agent_state(
            state["host"],
            fields,
            start_flag=bool(state.get("start_flag")),
            extra={"agent_type": state.get("agent_type"), "binary": state.get("binary")},
            force=getattr(payload, "forced", False),
        )

    def _agent_deleted(self, resource, event, trigger, payload):
        agent = payload.states[0]
        configurations = agent.configurations or {}
        if isinstance(configurations, str):
            configurations = json.loads(configurations)
        if not any(key in configurations for key in AGENT_KEYS):
            return
        self._agent_state(
            agent.host,
            {"tunneling_ip": None, "tunnel_types": [], "l2pop_network_types": None},
            start_flag=False,
            extra={},
        )

    def _agent_state(self, host, fields, start_flag, extra, force=False):
        context = n_context.get_admin_context()
        encoded = json.dumps(fields, sort_keys=True)
        with db_api.CONTEXT_WRITER.using(context):
            known = context.session.query(models.L2popAgent).filter_by(host=host).first()
            if known is not None and known.data == encoded and not start_flag and not force:
                return
            if known is None:
                context.session.add(models.L2popAgent(host=host, data=encoded))
            else:
                known.data = encoded
            data = dict(fields, host=host, start_flag=start_flag)
            data.update({key: value for key, value in extra.items() if value})
            journal.record(context, translate.AGENT, host, translate.REPORT, data)
        self.journal.kick()
