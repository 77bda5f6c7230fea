"""Journal rows -> l2pop API requests.

A row is ``(object_type, operation, data)``; ``data`` holds Neutron's values (Neutron ids).
Every request is absolute (a create looked up first, an update that sets values, a delete
where 404 means done, device up/down and agent reports that l2pop applies idempotently), so
a row delivered twice — the answer lost, the row retried — changes nothing the second time.

| row                         | request                                                        |
|-----------------------------|----------------------------------------------------------------|
| network create / delete     | POST /v2.0/networks (provider attributes), then its segment 0  |
|                             | named after Neutron's first segment (PUT /v2.0/segments) / DELETE |
| segment create / delete     | POST /v2.0/segments / DELETE                                   |
| subnet create / delete      | POST /v2.0/subnets (cidr; no gateway: l2pop needs none) / DELETE |
| port create / update / delete | POST / PUT / DELETE /v2.0/ports (mac, fixed IPs, owner, host) |
| port up / down              | POST /v2.0/l2pop/devices/{port}/up|down (host, refresh_tunnels)|
| agent report                | POST /v2.0/l2pop/agents                                        |
| router put / delete         | PUT / DELETE /v2.0/l2pop/routers/{router} (ha, hosts; Neutron's id) |
"""

from networking_l2pop import client as l2pop_client
from networking_l2pop.client import DONE, Outcome

NETWORK = "network"
SUBNET = "subnet"
SEGMENT = "segment"
PORT = "port"
AGENT = "agent"
ROUTER = "router"

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
UP = "up"
DOWN = "down"
REPORT = "report"
PUT = "put"

# Port attributes l2pop reads, as journalled (Neutron names) -> l2pop API names.
PORT_FIELDS = {
    "mac_address": "mac_address",
    "fixed_ips": "fixed_ips",
    "device_owner": "device_owner",
    "device_id": "device_id",
    "host": "binding:host_id",
    "admin_state_up": "admin_state_up",
}


def port_attributes(data):
    """The l2pop body of the port fields present in ``data``."""
    body = {}
    for name, api_name in PORT_FIELDS.items():
        if name not in data:
            continue
        value = data[name]
        if name == "fixed_ips":
            value = [{"ip_address": ip} for ip in value]
        elif name == "host":
            value = value or ""
        body[api_name] = value
    return body


def network_attributes(data):
    body = {
        "project_id": data["project_id"],
        "provider:network_type": data["network_type"],
    }
    if data.get("segmentation_id") is not None:
        body["provider:segmentation_id"] = data["segmentation_id"]
    if data.get("physical_network"):
        body["provider:physical_network"] = data["physical_network"]
    return body


def segment_attributes(data, network):
    body = {"network_id": network, "network_type": data["network_type"]}
    if data.get("segmentation_id") is not None:
        body["segmentation_id"] = data["segmentation_id"]
    if data.get("physical_network"):
        body["physical_network"] = data["physical_network"]
    return body


def _name_first_segment(client, network, segment_id):
    """Names the l2pop network's first segment after Neutron's (a network create makes it
    unnamed), so that a segment delete finds it; one named already is left as it is."""
    status, body = client.call(
        "GET", "/v2.0/segments?network_id=%s&sort_key=segment_index&sort_dir=asc&limit=1" % network
    )
    outcome = l2pop_client.classify(status, body)
    if outcome.kind != DONE or not body.get("segments"):
        return outcome
    first = body["segments"][0]
    if first.get("name") is not None:
        return outcome
    status, body = client.call("PUT", "/v2.0/segments/%s" % first["id"], {"segment": {"name": segment_id}})
    return l2pop_client.classify(status, body)


def _missing(collection, neutron_id):
    # Its create was refused before (a failed row), or it never reached l2pop.
    return Outcome(l2pop_client.REFUSED, "no %s named %s in l2pop" % (collection[:-1], neutron_id))


def _resolved(client, collection, neutron_id):
    """(Outcome, l2pop id) of a resource that must exist."""
    outcome, l2pop_id = client.lookup(collection, neutron_id, fresh=True)
    if outcome.kind == DONE and l2pop_id is None:
        return _missing(collection, neutron_id), None
    return outcome, l2pop_id


def _existing(client, collection, neutron_id, method, suffix="", body=None):
    outcome, found = client.on(collection, neutron_id, method, suffix, body)
    if outcome.kind == DONE and not found:
        return _missing(collection, neutron_id)
    return outcome


def _delete(client, collection, neutron_id):
    """DELETE; a resource l2pop does not have (any more) is done."""
    outcome, _ = client.on(collection, neutron_id, "DELETE")
    client.forget(collection, neutron_id)
    if outcome.kind == l2pop_client.REFUSED and outcome.detail.startswith("404"):
        return Outcome(DONE)
    return outcome


def deliver(client, object_type, operation, data):
    """Sends one journal row; its Outcome."""
    if object_type == NETWORK and operation == CREATE:
        outcome, network = client.create("networks", data["id"], network_attributes(data))
        if outcome.kind != DONE or not data.get("segment_id"):
            return outcome
        return _name_first_segment(client, network, data["segment_id"])
    if object_type == NETWORK and operation == DELETE:
        return _delete(client, "networks", data["id"])
    if object_type == SUBNET and operation == CREATE:
        outcome, network = _resolved(client, "networks", data["network_id"])
        if network is None:
            return outcome
        outcome, _ = client.create(
            "subnets",
            data["id"],
            {
                "network_id": network,
                "cidr": data["cidr"],
                "gateway_ip": None,
                "enable_dhcp": False,
                "project_id": data["project_id"],
            },
        )
        return outcome
    if object_type == SEGMENT and operation == CREATE:
        outcome, network = _resolved(client, "networks", data["network_id"])
        if network is None:
            return outcome
        outcome, _ = client.create("segments", data["id"], segment_attributes(data, network))
        return outcome
    if object_type == SEGMENT and operation == DELETE:
        return _delete(client, "segments", data["id"])
    if object_type == SUBNET and operation == DELETE:
        return _delete(client, "subnets", data["id"])
    if object_type == PORT and operation == CREATE:
        outcome, network = _resolved(client, "networks", data["network_id"])
        if network is None:
            return outcome
        attributes = port_attributes(data)
        attributes.update(network_id=network, project_id=data["project_id"])
        if not attributes.get("binding:host_id"):
            attributes.pop("binding:host_id", None)
        outcome, _ = client.create("ports", data["id"], attributes)
        return outcome
    if object_type == PORT and operation == UPDATE:
        return _existing(client, "ports", data["id"], "PUT", body={"port": port_attributes(data)})
    if object_type == PORT and operation == DELETE:
        return _delete(client, "ports", data["id"])
    if object_type == PORT and operation in (UP, DOWN):
        device = {"host": data["host"]}
        if operation == UP:
            device["refresh_tunnels"] = bool(data.get("refresh_tunnels"))
        # /v2.0/l2pop/devices/{id}/up|down: the same lookup, another prefix.
        outcome, port = client.lookup("ports", data["id"])
        if outcome.kind != DONE:
            return outcome
        for fresh in (False, True):
            if fresh:
                outcome, port = client.lookup("ports", data["id"], fresh=True)
                if outcome.kind != DONE:
                    return outcome
            if port is None:
                return _missing("ports", data["id"])
            status, body = client.call(
                "POST", "/v2.0/l2pop/devices/%s/%s" % (port, operation), {"device": device}
            )
            if status != 404:
                break
        return l2pop_client.classify(status, body)
    if object_type == AGENT and operation == REPORT:
        status, body = client.call("POST", "/v2.0/l2pop/agents", {"agent": data})
        return l2pop_client.classify(status, body)
    if object_type == ROUTER and operation == PUT:
        body = {"router": {"ha": bool(data["ha"]), "hosts": list(data["hosts"])}}
        status, answer = client.call("PUT", "/v2.0/l2pop/routers/%s" % data["id"], body)
        return l2pop_client.classify(status, answer)
    if object_type == ROUTER and operation == DELETE:
        status, answer = client.call("DELETE", "/v2.0/l2pop/routers/%s" % data["id"])
        if status == 404:
            return Outcome(DONE)
        return l2pop_client.classify(status, answer)
    return Outcome(l2pop_client.REFUSED, "unknown journal row %s %s" % (object_type, operation))
