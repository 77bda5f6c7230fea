"""Full sync: journal everything l2pop reads, as it is in Neutron now.

For a first start (a cloud that ran Neutron's own ``l2population`` before), and after the
l2pop server lost its state (a new store, a restore from an old backup). It writes, in one
transaction, the rows that describe the present: every L2 agent's report, every network with
its first segment, then its other segments, every subnet, every port (create, then an update with all its attributes,
for a port l2pop already has), and its status (ACTIVE: ``up`` from its host; otherwise ``down``;
a DVR interface port: one per host binding, ``DistributedPortBinding``), and every HA router
with the binding hosts of its HA network ports (before the ports, so that its interfaces'
``up`` rows count on those hosts).
The rows are delivered like any others, after whatever is already in the journal; every one of
them is idempotent, so a sync of an l2pop that is already right changes nothing.

Not done: resources l2pop has and Neutron no longer has are not deleted (the l2pop API lists
them by name; an operator deletes them there).

    networking-l2pop-sync --config-file /etc/neutron/neutron.conf \\
        --config-file /etc/neutron/plugins/ml2/ml2_conf.ini
"""

import sys
import time

from neutron_lib import constants as const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory

from neutron.objects import network as network_obj
from neutron.plugins.ml2 import db as ml2_db

from networking_l2pop import journal
from networking_l2pop import translate
from networking_l2pop.mech_driver import (
    AGENT_KEYS,
    ha_router_ports,
    network_row,
    port_fields,
    project_of,
    router_row,
    segment_fields,
)


def _segments(context, network_id):
    """The network's static segments in ``segment_index`` order, as dicts."""
    objects = network_obj.NetworkSegment.get_objects(context, network_id=network_id, is_dynamic=False)
    return [segment_fields(segment, network_id) for segment in sorted(objects, key=lambda s: s.segment_index)]


def full_sync(plugin, context, driver):
    """Journals the present state (see the module doc); the number of rows written."""
    rows = []
    for agent in plugin.get_agents(context):
        configurations = agent.get("configurations") or {}
        if any(key in configurations for key in AGENT_KEYS):
            rows.append(("agent", agent))
    networks = plugin.get_networks(context)
    subnets = plugin.get_subnets(context)
    ports = plugin.get_ports(context)
    written = 0
    for _, agent in rows:
        driver._agent_reported(None, None, None, _AgentPayload(agent, forced=True))
        written += 1
    with db_api.CONTEXT_WRITER.using(context):
        for network in networks:
            segments = _segments(context, network["id"])
            if not segments:
                continue
            journal.record(
                context, translate.NETWORK, network["id"], translate.CREATE, network_row(network, segments[0])
            )
            written += 1
            for segment in segments[1:]:
                journal.record(context, translate.SEGMENT, segment["id"], translate.CREATE, segment)
                written += 1
        for subnet in subnets:
            journal.record(
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
            written += 1
        routers = sorted(
            {p["device_id"] for p in ports if p.get("device_owner") == const.DEVICE_OWNER_ROUTER_HA_INTF and p.get("device_id")}
        )
        for router in routers:
            operation, data = router_row(router, ha_router_ports(context, router))
            journal.record(context, translate.ROUTER, router, operation, data)
            written += 1
        for port in ports:
            fields = port_fields(port)
            if port.get("device_owner") == const.DEVICE_OWNER_DVR_INTERFACE:
                fields["host"] = None
            create = dict(fields, id=port["id"], network_id=port["network_id"], project_id=project_of(port))
            journal.record(context, translate.PORT, port["id"], translate.CREATE, create)
            journal.record(context, translate.PORT, port["id"], translate.UPDATE, dict(fields, id=port["id"]))
            written += 2
            for host, status in _statuses(context, port):
                operation = translate.UP if status == const.PORT_STATUS_ACTIVE else translate.DOWN
                journal.record(context, translate.PORT, port["id"], operation, {"id": port["id"], "host": host})
                written += 1
    driver.journal.kick()
    return written


def _statuses(context, port):
    """(host, status) of the port's bindings: its binding host, or a DVR port's per-host ones."""
    if port.get("device_owner") == const.DEVICE_OWNER_DVR_INTERFACE:
        bindings = ml2_db.get_distributed_port_bindings(context, port["id"])
        return sorted((binding.host, binding.status) for binding in bindings if binding.host)
    host = port.get(portbindings.HOST_ID)
    return [(host, port["status"])] if host else []


class _AgentPayload:
    """What the AGENT callbacks carry, for an agent read from the database."""

    def __init__(self, agent, forced):
        self.desired_state = dict(agent, start_flag=False)
        self.forced = forced


def main():
    from neutron.common import config as n_config
    from neutron import manager

    n_config.register_common_config_options()
    n_config.init(sys.argv[1:])
    n_config.setup_logging()
    manager.init()
    plugin = directory.get_plugin()
    driver = plugin.mechanism_manager.mech_drivers["l2pop_server"].obj
    context = n_context.get_admin_context()
    written = full_sync(plugin, context, driver)
    print("networking-l2pop-sync: %d journal rows written; delivering" % written)
    while True:
        wait = driver.journal.deliver_pending(context)
        pending = journal.pending_count(context)
        if pending == 0:
            break
        if wait is None:
            print("networking-l2pop-sync: another neutron-server process holds the lease; "
                  "it delivers the %d rows left" % pending)
            return 0
        time.sleep(wait)
    failed = journal.failed_rows(context)
    for row in failed:
        print("failed: %r" % (row,))
    return 1 if failed else 0
