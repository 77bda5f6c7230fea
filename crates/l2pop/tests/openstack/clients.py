"""openstacksdk and the `openstack` CLI against a running l2pop server (issue 12 item 4).

Run by crates/l2pop/tests/openstack_clients.rs with L2POP_URL (the server, no trailing slash),
L2POP_TOKEN (its admin token) and L2POP_OPENSTACK (the CLI). Authenticates as operators do
without Keystone: keystoneauth's admin_token plugin, which discovers the API from the version
documents at the endpoint. Every check raises on failure; the last line is "OK <count>".
"""

import itertools
import json
import os
import subprocess
import sys
import uuid

import openstack
from openstack import exceptions

URL = os.environ["L2POP_URL"]
TOKEN = os.environ["L2POP_TOKEN"]
CLI = os.environ["L2POP_OPENSTACK"]
checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def cli(*args, ok=True):
    """Runs `openstack <args>`; the parsed JSON output (or the failed process when ok=False)."""
    command = [CLI, "--os-auth-type", "admin_token", "--os-endpoint", URL, "--os-token", TOKEN,
               *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if not ok:
        check(done.returncode != 0, f"{args} should fail: {done.stdout}")
        return done
    if done.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    if "json" in args:
        return json.loads(done.stdout)
    return done.stdout


conn = openstack.connection.Connection(
    auth_type="admin_token", auth={"endpoint": URL, "token": TOKEN})
net = conn.network

# -- networks, subnets, ports (openstacksdk) --
network = net.create_network(name="sdk-net", provider_network_type="vxlan",
                             provider_segmentation_id=1001, mtu=1400)
check(network.provider_segmentation_id == 1001, network)
check(network.mtu == 1400, network)
subnet = net.create_subnet(network_id=network.id, cidr="10.0.0.0/24", ip_version=4,
                           name="sdk-sub", dns_nameservers=["192.0.2.53"])
check(subnet.allocation_pools == [{"start": "10.0.0.2", "end": "10.0.0.254"}], subnet)
check(subnet.dns_nameservers == ["192.0.2.53"], subnet)
subnet = net.update_subnet(subnet, description="updated")
check(subnet.description == "updated", subnet)
ports = [net.create_port(network_id=network.id, name=f"sdk-port-{n}", description="d",
                         binding_vnic_type="normal") for n in range(3)]
check(ports[0].fixed_ips[0]["ip_address"] == "10.0.0.2", ports[0])
ip = ports[1].fixed_ips[0]["ip_address"]
found = list(net.ports(fixed_ips=[f"ip_address={ip}"]))
check([p.id for p in found] == [ports[1].id], found)
found = list(net.ports(network_id=network.id, name="sdk-port-2"))
check([p.id for p in found] == [ports[2].id], found)
check(net.find_network("sdk-net").id == network.id, "find by name")
# Bulk create (one POST of {"ports": [...]}), all or none.
bulk = list(net.create_ports([{"network_id": network.id, "name": f"bulk-{n}"} for n in range(2)]))
check([p.name for p in bulk] == ["bulk-0", "bulk-1"], bulk)
check(bulk[0].fixed_ips != bulk[1].fixed_ips, bulk)
try:
    list(net.create_ports([{"network_id": network.id, "name": "bulk-2"},
                           {"network_id": network.id, "fixed_ips": [{"ip_address": "10.9.9.9"}]}]))
    check(False, "a bulk with a bad address was accepted")
except exceptions.BadRequestException as error:
    check("ports[1].fixed_ips" in str(error), error)
check(not list(net.ports(name="bulk-2")), "a refused bulk created its first port")
for port in bulk:
    net.delete_port(port)

# -- paging and sorting: the SDK follows the links to the end --
paged = list(net.ports(limit=1))
check(sorted(p.id for p in paged) == sorted(p.id for p in ports), paged)
by_name = [p.name for p in net.ports(sort_key="name", sort_dir="desc", limit=2)]
check(by_name == ["sdk-port-2", "sdk-port-1", "sdk-port-0"], by_name)

# -- agents (reported over the l2pop API by the Rust side) --
agents = list(net.agents())
check([a.host for a in agents] == ["compute-1"], agents)
check(agents[0].is_alive, agents[0])

# -- BGPVPNs and network associations --
vpn = net.create_bgpvpn(name="vpn1", route_targets=["64512:1"])
check(vpn.route_targets == ["64512:1"], vpn)
association = net.create_bgpvpn_network_association(vpn, network_id=network.id)
check(association.network_id == network.id, association)
check([v.id for v in net.bgpvpns(networks=network.id)] == [vpn.id], "bgpvpns by network")
vpn2 = net.create_bgpvpn(name="vpn2", route_targets=["64512:2"])
# Paged and sorted as the other collections (a server ignoring limit/marker loops the SDK).
paged = list(itertools.islice(net.bgpvpns(limit=1), 10))
check(sorted(v.id for v in paged) == sorted([vpn.id, vpn2.id]), paged)
# openstacksdk's BgpVpn resource does not pass sort_key/sort_dir on (they are not in its query
# mapping), so the sorted page is asked for directly, and its next link followed.
first = net.get("/bgpvpn/bgpvpns?sort_key=name&sort_dir=desc&limit=1").json()
check([v["name"] for v in first["bgpvpns"]] == ["vpn2"], first)
following = [link["href"] for link in first.get("bgpvpns_links", []) if link["rel"] == "next"]
check(len(following) == 1, first)
second = net.get(following[0][following[0].index("/bgpvpn/"):]).json()
check([v["name"] for v in second["bgpvpns"]] == ["vpn1"], second)
response = net.get("/bgpvpn/bgpvpns?colour=red", raise_exc=False)
check(response.status_code == 400, response.text)
check(response.json()["NeutronError"]["field"] == "colour", response.text)
net.delete_bgpvpn(vpn2)
net.delete_bgpvpn_network_association(vpn, association)
net.delete_bgpvpn(vpn)

# -- errors --
try:
    net.get_network(str(uuid.uuid4()))
    check(False, "a missing network is found")
except exceptions.NotFoundException:
    check(True, "")
try:
    net.create_network(name="bad", provider_network_type="vxlan", provider_segmentation_id="x")
    check(False, "segmentation id 'x' accepted")
except exceptions.BadRequestException as error:
    check("provider:segmentation_id" in str(error), error)
# The SDK sends only the filters it knows; a raw request shows the server's answer.
response = net.get("/ports?colour=red", raise_exc=False)
check(response.status_code == 400, response.text)
check(response.json()["NeutronError"]["field"] == "colour", response.text)

# Fallback answers carry NeutronError bodies too.
for method, path, status in [("get", "/no-such-collection", 404), ("delete", "/networks", 405)]:
    response = getattr(net, method)(path, raise_exc=False)
    check(response.status_code == status, (method, path, response.status_code, response.text))
    check("NeutronError" in response.json(), response.text)
# Integers sent as strings are converted, as Neutron converts them (the CLI sends strings).
response = net.post("/bgp-speakers", json={"bgp_speaker": {"name": "s", "local_as": "64512"}},
                    raise_exc=False)
check(response.status_code == 201, response.text)
check(response.json()["bgp_speaker"]["local_as"] == 64512, response.text)
net.delete("/bgp-speakers/" + response.json()["bgp_speaker"]["id"])
fields = net.get("/bgpvpn/bgpvpns?fields=id&fields=name").json()["bgpvpns"]
check(all(sorted(v) == ["id", "name"] for v in fields), fields)

# -- the openstack CLI --
extensions = cli("extension", "list", "--network", "-f", "json")
check(any(e["Alias"] == "binding" for e in extensions), extensions)
cli_net = cli("network", "create", "--provider-network-type", "vxlan", "--provider-segment",
              "2002", "cli-net", "-f", "json")
check(cli_net["provider:segmentation_id"] == 2002, cli_net)
cli_sub = cli("subnet", "create", "--network", "cli-net", "--subnet-range", "10.2.0.0/24",
              "--allocation-pool", "start=10.2.0.10,end=10.2.0.20", "cli-sub", "-f", "json")
check(cli_sub["allocation_pools"] in ("10.2.0.10-10.2.0.20",
                                      [{"start": "10.2.0.10", "end": "10.2.0.20"}]), cli_sub)
table = cli("subnet", "show", "cli-sub")
check("allocation_pools" in table and "10.2.0.10-10.2.0.20" in table, table)
cli("subnet", "list", "-f", "json")
cli_port = cli("port", "create", "--network", "cli-net", "--description", "cli", "cli-port",
               "-f", "json")
cli_ip = cli_port["fixed_ips"][0]["ip_address"]
listed = cli("port", "list", "--fixed-ip", f"ip-address={cli_ip}", "-f", "json")
check([p["ID"] for p in listed] == [cli_port["id"]], listed)
listed = cli("network", "agent", "list", "-f", "json")
check([a["Host"] for a in listed] == ["compute-1"], listed)
cli("network", "agent", "set", "--disable", "--description", "drained", listed[0]["ID"])
shown = cli("network", "agent", "show", listed[0]["ID"], "-f", "json")
check(shown["admin_state_up"] in (False, "DOWN"), shown)
check(shown["description"] == "drained", shown)
agent = net.update_agent(listed[0]["ID"], is_admin_state_up=True)
check(agent.is_admin_state_up and agent.description == "drained", agent)
cli("network", "list", "--long", "-f", "json")
# Segments (the segments extension): a second segment of cli-net, listed, changed, deleted.
seg = cli("network", "segment", "create", "--network", "cli-net", "--network-type", "vxlan",
          "--segment", "2003", "cli-seg", "-f", "json")
check(seg["segmentation_id"] == 2003, seg)
listed = cli("network", "segment", "list", "--network", "cli-net", "-f", "json")
check(sorted(s["Segment"] for s in listed) == [2002, 2003], listed)
cli("network", "segment", "set", "--description", "second", "cli-seg")
shown = cli("network", "segment", "show", "cli-seg", "-f", "json")
check(shown["description"] == "second", shown)
cli("network", "segment", "create", "--network", "cli-net", "--network-type", "vxlan",
    "--segment", "2003", "dup-seg", ok=False)
cli("network", "segment", "delete", "cli-seg")
cli("port", "delete", "cli-port")
cli("subnet", "delete", "cli-sub")
cli("subnet", "show", "cli-sub", ok=False)
cli("network", "show", "no-such-network", ok=False)
cli("port", "delete", ports[0].id)
check(not any(p.id == ports[0].id for p in net.ports()), "the CLI deleted the port")

print(f"OK {checks}")
sys.stdout.flush()
