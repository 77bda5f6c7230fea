"""The driver against Neutron's own l2population, through Neutron's real ML2 plugin.

Each test runs the same script twice in Neutron's harness (see ``harness``): once with Neutron's
``l2population`` driver, once with ``l2pop_server`` journalling to a real l2pop server; both
send their casts through the real RabbitMQ, and after every step each host's table, built from
the casts it received as an OVS agent would, must be the same in both runs.

Differences from Neutron's behaviour that show in a host's table are named in
``KNOWN_DIFFERENCES`` with the DESIGN.md / scenarios/README.md entry they come from; ``MET``
names the steps where a script meets one (there the tables must differ, and by exactly that).
Every other step's tables are compared whole. The scripts say in comments where the casts
differ on the wire without changing a table (DESIGN.md differences 1 and 2: Neutron's second
full FDB for a host's second port, its duplicate casts).
"""

import json
import unittest

from networking_l2pop import journal

from tests import harness
from tests import support

H1, H2, H3, H4 = "h1", "h2", "h3", "h4"

# Agents, two networks (one dual-stack), ports on three hosts, second ports, IP changes,
# down/up, migration, a MAC change while down, an agent restart with refresh_tunnels, deletes
# (not last, last on a host, last on a network), a late agent, a network delete.
SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24"),
    ("subnet", "A", "2001:db8:1::/64"),
    ("network", "B", 1002),
    ("subnet", "B", "10.2.0.0/24"),
    ("port", "a1", "A", H1, "fa:16:3e:00:01:01", ["10.1.0.11", "2001:db8:1::11"]),
    ("port", "a2", "A", H2, "fa:16:3e:00:01:02", ["10.1.0.12"]),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("port", "a4", "A", H1, "fa:16:3e:00:01:04", ["10.1.0.14"]),
    ("port", "b1", "B", H1, "fa:16:3e:00:02:01", ["10.2.0.11"]),
    ("port", "b2", "B", H2, "fa:16:3e:00:02:02", ["10.2.0.12"]),
    # First port on each host: full FDB host casts and fanouts (Neutron: each twice).
    ("up", "a1"),
    ("up", "a2"),
    # Second port on h1: Neutron sends h1 a full FDB again (LP #1789846); l2pop does not.
    ("up", "a4"),
    ("up", "a3"),
    ("up", "b1"),
    ("up", "b2"),
    # IP change on an ACTIVE port: chg_ip (ARP entries move, MAC stays).
    ("ips", "a2", ["10.1.0.22", "10.1.0.23"]),
    # Not the last port on h1: unicast removed, flood stays; back up.
    ("down", "a4"),
    ("up", "a4"),
    # An IP change on a DOWN port: Neutron sends chg_ip anyway (rule 8), and every agent adds
    # an ARP entry for a port that is not there; l2pop sends nothing (chg_ip only for present
    # ports, rule 13). Known difference "chg-ip-of-inactive-port"; the next up evens it out.
    ("down", "a4"),
    ("ips", "a4", ["10.1.0.24"]),
    ("up", "a4"),
    # Migration h3 -> h2: h3's last port leaves (its flood goes), the port comes up on h2.
    ("move", "a3", H2),
    ("up", "a3"),
    # A MAC change (Neutron allows it on an unbound port only), announced at the next up.
    ("down", "a2"),
    ("unbind", "a2"),
    ("mac", "a2", "fa:16:3e:00:01:22"),
    ("move", "a2", H2),
    ("up", "a2"),
    # OVS agent restart on h1: start_flag, then every device up with refresh_tunnels.
    ("restart_agent", H1),
    # Deletes: not the last port on h1, then the last port of B on h2.
    ("delete", "a1"),
    ("delete", "b2"),
    # A late agent and its first port.
    ("agent", H4, "192.0.2.14"),
    ("port", "a5", "A", H4, "fa:16:3e:00:01:05", ["10.1.0.15"]),
    ("up", "a5"),
    # Last port on B, then B itself.
    ("delete", "b1"),
    ("delete_network", "B"),
    # Last port on h4.
    ("delete", "a5"),
    # h2's tunneling_ip changes while it has ACTIVE ports: Neutron announces nothing (the
    # others keep h2's old VTEP); l2pop moves h2's entries to the new one. Known difference
    # "vtep-change"; last, because Neutron's tables stay behind until h2's ports go down and up.
    ("agent", H2, "192.0.2.22"),
)

# Kill the l2pop server after the first ports are up; the changes made while it is down are
# journalled in Neutron's database and delivered, in order, once it is back.
OUTAGE_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24"),
    ("port", "a1", "A", H1, "fa:16:3e:00:01:01", ["10.1.0.11"]),
    ("port", "a2", "A", H2, "fa:16:3e:00:01:02", ["10.1.0.12"]),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("up", "a1"),
    ("up", "a2"),
    ("kill_server",),
    ("up", "a3"),
    ("ips", "a2", ["10.1.0.22"]),
    ("network", "C", 1003),
    ("subnet", "C", "10.3.0.0/24"),
    ("port", "c1", "C", H1, "fa:16:3e:00:03:01", ["10.3.0.11"]),
    ("port", "c2", "C", H3, "fa:16:3e:00:03:02", ["10.3.0.12"]),
    ("up", "c1"),
    ("up", "c2"),
    ("move", "a1", H2),
    ("up", "a1"),
    ("delete", "a3"),
    ("start_server",),
    ("port", "a4", "A", H3, "fa:16:3e:00:01:04", ["10.1.0.14"]),
    ("up", "a4"),
)

# A cloud that ran Neutron's l2population moves to l2pop_server: the l2pop server starts
# empty, the full sync journals what Neutron has, and from then on every step matches.
ADOPTION_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("agent", H4, "192.0.2.14"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24"),
    ("network", "B", 1002),
    ("subnet", "B", "10.2.0.0/24"),
    ("port", "a1", "A", H1, "fa:16:3e:00:01:01", ["10.1.0.11"]),
    ("port", "a2", "A", H2, "fa:16:3e:00:01:02", ["10.1.0.12"]),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("port", "b1", "B", H1, "fa:16:3e:00:02:01", ["10.2.0.11"]),
    ("port", "b2", "B", H3, "fa:16:3e:00:02:02", ["10.2.0.12"]),
    # A second segment of A: the sync sends it after A (every segment, in order).
    ("segment", "A", 2001),
    ("up", "a1"),
    ("up", "a2"),
    ("up", "a3"),
    ("up", "b1"),
    ("up", "b2"),
    ("down", "a3"),
    # A DVR interface, ACTIVE on h4 (its only port there) and bound but DOWN on h1.
    ("dvr_port", "r1", "A", "fa:16:3e:00:0f:01", ["10.1.0.1"]),
    ("dvr_bind", "r1", H4),
    ("dvr_bind", "r1", H1),
    ("dvr_up", "r1", H4),
    ("discard_journal",),
    ("start_server",),
    ("full_sync",),
    ("up", "a3"),
    ("move", "a2", H3),
    ("up", "a2"),
    ("delete", "b2"),
    ("dvr_down", "r1", H4),
)

# A DVR router interface bound on two hosts (one with a VM, one without), up and down on each,
# then deleted; and a subnet deleted and one overlapping it created (l2pop must have dropped
# the first, or it refuses the second and the port in it).
DVR_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24"),
    ("port", "a1", "A", H1, "fa:16:3e:00:01:01", ["10.1.0.11"]),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("up", "a1"),
    ("up", "a3"),
    ("dvr_port", "r1", "A", "fa:16:3e:00:0f:01", ["10.1.0.1"]),
    ("dvr_bind", "r1", H1),
    ("dvr_bind", "r1", H2),
    # h1 has a VM already: its flood is known everywhere, a DVR port adds no unicast. Neutron
    # sends h1 a full FDB again (its second port, rule 2c) that floods to h2, whose binding is
    # DOWN: known difference "dvr-down-binding".
    ("dvr_up", "r1", H1),
    # h2's first port: h2 gets the full FDB, the others flood to h2 (flood only, rule 11).
    ("dvr_up", "r1", H2),
    # The last port on h2 goes: its flood goes.
    ("dvr_down", "r1", H2),
    ("dvr_up", "r1", H2),
    # h2's OVS agent restarts: its DVR device up again, with refresh_tunnels (LP #1773286).
    ("restart_agent", H2),
    # h1's VM goes down: the DVR port keeps h1 in the flood lists.
    ("down", "a1"),
    # The DVR port goes: h1 and h2 are left without ports, their flood goes.
    ("delete", "r1"),
    ("up", "a1"),
    ("subnet", "A", "10.9.0.0/24"),
    ("delete_subnet", "A", "10.9.0.0/24"),
    ("subnet", "A", "10.9.0.0/16"),
    ("port", "a2", "A", H2, "fa:16:3e:00:01:02", ["10.9.1.2"]),
    ("up", "a2"),
)

# A network given a second segment, ports up and down around it, its first segment deleted once
# no port is left on it, new ports (bound to the second segment, now the first), and a later
# segment added and deleted while ports are bound. Neutron binds each port to the first segment
# its agent can bind (segment_index order): the network's first here, which is the segment
# l2pop serves a network on.
SEGMENT_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24"),
    ("port", "a1", "A", H1, "fa:16:3e:00:01:01", ["10.1.0.11"]),
    ("port", "a2", "A", H2, "fa:16:3e:00:01:02", ["10.1.0.12"]),
    ("up", "a1"),
    ("up", "a2"),
    ("segment", "A", 2001),
    ("down", "a2"),
    ("up", "a2"),
    ("delete", "a1"),
    ("delete", "a2"),
    ("delete_segment", "A", 1001),
    ("port", "a3", "A", H1, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("port", "a4", "A", H3, "fa:16:3e:00:01:04", ["10.1.0.14"]),
    ("up", "a3"),
    ("up", "a4"),
    ("segment", "A", 3001),
    ("delete_segment", "A", 3001),
    ("down", "a3"),
    ("up", "a3"),
)

# An HA router hosted on h1 and h2 (Neutron's l2pop tests' L3 HA plugin), its interface on A
# active on h1: flood to both hosts everywhere (rule 12), a new VM host gets both (Neutron's
# test_other_agents_get_flood_entries_for_ha_agents), then h2's L3 agent stops hosting it.
HA_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("agent", H4, "192.0.2.14"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24", "10.1.0.1"),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("up", "a3"),
    ("ha_router", "r", [H1, H2]),
    ("ha_interface", "ri", "r", "A"),
    ("ha_active", "r", H1),
    # The interface is plugged on both hosts; h1's agent reports it first. Neutron announces h1
    # only, and h2 once h2's agent reports; l2pop counts it on both hosts at the first up (D6).
    # Known difference "ha-standby-before-its-report"; h2's report evens it out.
    ("ha_up", "ri", H1),
    ("ha_up", "ri", H2),
    ("port", "a4", "A", H4, "fa:16:3e:00:01:04", ["10.1.0.14"]),
    ("up", "a4"),
    ("down", "a3"),
    ("up", "a3"),
    # h2's L3 agent stops hosting the router: Neutron deletes its HA network port and sends
    # nothing, so every host keeps flooding to h2; l2pop takes h2's flood back. Known difference
    # "ha-host-leaves"; last, because Neutron's tables stay behind from then on.
    ("ha_leave", "r", H2),
)

# The full sync of a cloud with an HA router active on h1 and standing by on h2: the router's
# hosts are sent before its interface's status, so the sync's state is Neutron's.
HA_ADOPTION_SCRIPT = (
    ("agent", H1, "192.0.2.11"),
    ("agent", H2, "192.0.2.12"),
    ("agent", H3, "192.0.2.13"),
    ("network", "A", 1001),
    ("subnet", "A", "10.1.0.0/24", "10.1.0.1"),
    ("port", "a3", "A", H3, "fa:16:3e:00:01:03", ["10.1.0.13"]),
    ("up", "a3"),
    ("ha_router", "r", [H1, H2]),
    ("ha_interface", "ri", "r", "A"),
    ("ha_active", "r", H1),
    ("ha_up", "ri", H1),
    ("ha_up", "ri", H2),
    ("discard_journal",),
    ("start_server",),
    ("full_sync",),
    ("down", "a3"),
    ("up", "a3"),
)

# Differences that change a host's table, from DESIGN.md / scenarios/README.md (★ entries).
# A script step that meets one names it in MET: at that step the tables must differ, and
# exactly by what the difference says.
KNOWN_DIFFERENCES = {
    "uncovered-hosts": "Neutron lists hosts whose agent does not cover the network type in "
    "others' full FDBs; l2pop neither announces nor sends to them (scenarios/README.md, on(H, N))",
    "chg-ip-of-inactive-port": "Neutron sends chg_ip for a DOWN port (rule 8), which adds an "
    "ARP entry for a port no agent forwards to; l2pop only for present ports (rule 13)",
    "late-agent-report": "Neutron never announces ports whose agent reported after they went "
    "up (LP #1794991); l2pop announces them when the report comes",
    "dvr-down-binding": "Neutron's full FDB floods to every host with a DVR binding, ACTIVE or "
    "not, once the DVR port is ACTIVE on some host (l2pop/db.py `_get_dvr_active_network_ports` "
    "filters on the port's status, not the binding's); l2pop only to hosts whose binding is "
    "ACTIVE, as its fanouts do (scenarios/README.md, presence)",
    "ha-standby-before-its-report": "Neutron announces an active HA interface on a host of its "
    "router when that host's agent reports the device up (update_port_up with that host); l2pop "
    "on every host of the router at the first report, as Neutron's own count C(H, N) has it "
    "(reference D6, rule 12)",
    "ha-host-leaves": "Neutron announces nothing when an L3 agent stops hosting an HA router "
    "(its HA network port is deleted, its replicated interfaces are untouched), so every host "
    "keeps flooding to it; l2pop removes the host's presence with the router's hosts "
    "(PUT /v2.0/l2pop/routers, docs/openstack.md)",
    "vtep-change": "Neutron never re-announces a host whose tunneling_ip changed; l2pop "
    "removes its entries under the old VTEP and adds them under the new one "
    "(scenarios/README.md, event `agent`)",
}


def without_vtep(new, old):
    def normalize(view):
        """``view`` with VTEP ``new`` written as ``old``."""
        return json.loads(json.dumps(view).replace('"%s"' % new, '"%s"' % old))

    return normalize


# Script step -> (known difference, what makes the two runs' tables equal when applied to both).
MET = {
    ("ips", "a4", ("10.1.0.24",)): (
        "chg-ip-of-inactive-port",
        lambda view: without_arp(view, ("10.1.0.24",)),
    ),
    ("agent", H2, "192.0.2.22"): ("vtep-change", without_vtep("192.0.2.22", "192.0.2.12")),
    ("dvr_up", "r1", H1): ("dvr-down-binding", lambda view: without_flood(view, H1, "192.0.2.12")),
    ("ha_up", "ri", H1): ("ha-standby-before-its-report", lambda view: without_host(view, H2, "192.0.2.12")),
    ("ha_leave", "r", H2): ("ha-host-leaves", lambda view: without_flood_anywhere(view, "192.0.2.12")),
}


def without_host(view, host, vtep):
    """``view`` without ``host``'s table and without anyone's flooding entries to ``vtep``."""
    return without_flood_anywhere({name: table for name, table in view.items() if name != host}, vtep)


def without_flood_anywhere(view, vtep):
    """``view`` without any host's flooding entries to ``vtep`` (and networks left empty)."""
    trimmed = view
    for host in view:
        trimmed = without_flood(trimmed, host, vtep)
    return {
        host: {net: table for net, table in networks.items() if table["flood"] or table["ucast"] or table["arp"]}
        for host, networks in trimmed.items()
    }


def without_flood(view, host, vtep):
    """``view`` without ``host``'s flooding entries to ``vtep``."""
    trimmed = json.loads(json.dumps(view))
    for table in trimmed.get(host, {}).values():
        table["flood"] = [ip for ip in table["flood"] if ip != vtep]
    return trimmed


def without_arp(view, ips):
    """``view`` without the ARP entries of ``ips`` (and networks left empty by that)."""
    trimmed = {}
    for host, networks in view.items():
        trimmed[host] = {}
        for network, table in networks.items():
            table = dict(table, arp={ip: mac for ip, mac in table["arp"].items() if ip not in ips})
            if table["flood"] or table["ucast"] or table["arp"]:
                trimmed[host][network] = table
    return trimmed


def differences(neutron, ours, skip=()):
    """Human-readable differences between the two runs' per-step tables."""
    problems = []
    for (index, step, expected), (_, _, got) in zip(neutron, ours):
        if index in skip:
            continue
        key = tuple(tuple(part) if isinstance(part, list) else part for part in step)
        if key in MET:
            name, normalize = MET[key]
            if expected == got:
                problems.append("after step %d %r: known difference %s not met" % (index, step, name))
            expected, got = normalize(expected), normalize(got)
        if expected != got:
            problems.append(
                "after step %d %r:\n  neutron: %s\n  l2pop:   %s"
                % (index, step, json.dumps(expected, sort_keys=True), json.dumps(got, sort_keys=True))
            )
    return problems


class AgainstNeutron(unittest.TestCase):
    def setUp(self):
        self.server = support.L2popServer()
        self.addCleanup(self.server.close)

    def test_every_step_converges_like_neutron(self):
        self.server.start()
        neutron, neutron_run = harness.run(harness.NEUTRON, SCRIPT)
        ours, run = harness.run(harness.L2POP, SCRIPT, self.server)
        self.assertEqual(len(neutron), len(SCRIPT))
        self.assertEqual(len(ours), len(SCRIPT))
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours)
        self.assertEqual(problems, [], "\n".join(problems))
        # The comparison is not vacuous: every host ended up with entries at some point.
        for host in (H1, H2, H3, H4):
            self.assertTrue(any(view[2].get(host) for view in ours), "no entries ever on " + host)
        # On the wire (DESIGN.md differences 1 and 2): Neutron repeats casts within a step
        # (double emission, a full FDB per device on refresh); l2pop never does.
        self.assertEqual([(step, casts) for step, casts in run.casts if len(set(casts)) != len(casts)], [])
        repeated = [step for step, casts in neutron_run.casts if len(set(casts)) != len(casts)]
        self.assertIn(("up", "a1"), repeated)
        self.assertIn(("restart_agent", H1), repeated)
        self.assertLess(sum(len(c) for _, c in run.casts), sum(len(c) for _, c in neutron_run.casts))

    def test_dvr_ports_and_subnet_deletes_converge_like_neutron(self):
        self.server.start()
        neutron, _ = harness.run(harness.NEUTRON, DVR_SCRIPT)
        ours, run = harness.run(harness.L2POP, DVR_SCRIPT, self.server)
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours)
        self.assertEqual(problems, [], "\n".join(problems))
        # Not vacuous: h2 had entries only through the DVR port (then through a2), and the DVR
        # port's steps changed the tables.
        up = DVR_SCRIPT.index(("dvr_up", "r1", H2))
        self.assertFalse(ours[up - 1][2].get(H2))
        self.assertTrue(ours[up][2].get(H2))
        self.assertNotEqual(ours[up][2][H1], ours[up - 1][2][H1])
        self.assertNotEqual(ours[up + 1][2][H1], ours[up][2][H1])

    def test_segments_added_and_deleted_converge_like_neutron(self):
        self.server.start()
        neutron, _ = harness.run(harness.NEUTRON, SEGMENT_SCRIPT)
        ours, run = harness.run(harness.L2POP, SEGMENT_SCRIPT, self.server)
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours)
        self.assertEqual(problems, [], "\n".join(problems))
        # Not vacuous: after the first segment went, the new ports' entries reached h1 and h3
        # under the second segment (the tables filter on the network's segment).
        up = SEGMENT_SCRIPT.index(("up", "a4"))
        self.assertTrue(ours[up][2].get(H1))
        self.assertTrue(ours[up][2].get(H3))
        segments = self.server.get("/v2.0/segments")["segments"]
        self.assertEqual(
            sorted((s["segmentation_id"], s["segment_index"]) for s in segments if s["segmentation_id"] in (1001, 2001, 3001)),
            [(2001, 1)],
        )

    def test_ha_router_hosts_converge_like_neutron(self):
        self.server.start()
        neutron, _ = harness.run(harness.NEUTRON, HA_SCRIPT)
        ours, run = harness.run(harness.L2POP, HA_SCRIPT, self.server)
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours)
        self.assertEqual(problems, [], "\n".join(problems))
        # Not vacuous: the interface made h2 (no VM, only the router) known on h3 in both runs,
        # and l2pop took it back when h2 left.
        first, second = HA_SCRIPT.index(("ha_up", "ri", H1)), HA_SCRIPT.index(("ha_up", "ri", H2))
        flood = lambda view: view.get(H3, {}).get("A", {}).get("flood", [])  # noqa: E731
        for run_views in (neutron, ours):
            self.assertNotIn("192.0.2.12", flood(run_views[first - 1][2]))
            self.assertIn("192.0.2.12", flood(run_views[second][2]))
        self.assertNotIn("192.0.2.12", flood(ours[-1][2]))
        self.assertIn("192.0.2.12", flood(neutron[-1][2]))

    def test_full_sync_sends_ha_routers(self):
        neutron, _ = harness.run(harness.NEUTRON, HA_ADOPTION_SCRIPT)
        ours, run = harness.run(harness.L2POP, HA_ADOPTION_SCRIPT, self.server)
        sync = HA_ADOPTION_SCRIPT.index(("full_sync",))
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours, skip=range(sync))
        self.assertEqual(problems, [], "\n".join(problems))
        # Not vacuous: h2, which has only the router's interface, is known on h3 after the sync.
        self.assertIn("192.0.2.12", ours[sync][2][H3]["A"]["flood"])

    def test_journal_delivers_everything_after_an_outage(self):
        self.server.start()
        neutron, _ = harness.run(harness.NEUTRON, OUTAGE_SCRIPT)
        ours, run = harness.run(harness.L2POP, OUTAGE_SCRIPT, self.server)
        kill = OUTAGE_SCRIPT.index(("kill_server",))
        start = OUTAGE_SCRIPT.index(("start_server",))
        # While the server was down the journal only grew (nothing was lost or skipped) ...
        self.assertEqual(len(run.pending), start - kill)
        self.assertEqual(run.pending, sorted(run.pending))
        self.assertGreater(run.pending[-1], 0)
        # ... and once it is back, every step matches Neutron again.
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        problems = differences(neutron, ours, skip=range(kill, start))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_full_sync_takes_over_from_neutrons_l2population(self):
        neutron, _ = harness.run(harness.NEUTRON, ADOPTION_SCRIPT)
        ours, run = harness.run(harness.L2POP, ADOPTION_SCRIPT, self.server)
        sync = ADOPTION_SCRIPT.index(("full_sync",))
        self.assertEqual(run.failed, [], "journal rows the l2pop server refused")
        # Before the sync l2pop had sent nothing: the tables it fills are all its own.
        self.assertTrue(all(not any(view.values()) for _, _, view in ours[:sync]))
        problems = differences(neutron, ours, skip=range(sync))
        self.assertEqual(problems, [], "\n".join(problems))
        # Every segment of A reached l2pop, named after Neutron's (the first by its network).
        segments = self.server.get("/v2.0/segments?sort_key=segment_index")["segments"]
        a = [s for s in segments if s["segmentation_id"] in (1001, 2001)]
        self.assertEqual([(s["segmentation_id"], s["segment_index"]) for s in a], [(1001, 0), (2001, 1)])
        self.assertTrue(all(s["name"] for s in a), a)


if __name__ == "__main__":
    unittest.main()
