"""What the driver tests stand on: the l2pop server binary, RabbitMQ capture, an agent model.

- :class:`L2popServer`: the real ``l2pop server`` (``L2POP_BIN``) on a temporary SQLite file,
  a free loopback port and the RabbitMQ of ``L2POP_AMQP_URL``; stoppable (SIGKILL) and
  restartable on the same file and port.
- :class:`CastCapture`: one exclusive queue bound to the l2pop fanout exchange and to the
  ``neutron`` exchange under every scenario host's routing key, so fanouts and host casts
  arrive in the order they were published, as an agent's consumer sees them.
- :class:`AgentTable`: what an OVS agent programs from those casts (br-tun tables 22, 20 and
  21: flood VTEPs, MAC -> VTEP, IP -> MAC), applied as ``ovs_neutron_agent`` applies
  ``fdb_add``/``fdb_remove``/``_fdb_chg_ip``: entries under its own ``local_ip`` ignored,
  networks without a local port ignored, unicast removed by MAC and ARP by IP whatever VTEP the
  removal names.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import amqp
import requests

FANOUT_EXCHANGE = "q-agent-notifier-l2population-update_fanout"
TOPIC = "q-agent-notifier-l2population-update"
CONTROL_EXCHANGE = "neutron"
FLOODING_ENTRY = ("00:00:00:00:00:00", "0.0.0.0")
ADMIN_TOKEN = "driver-test-admin"
# How long a wait for the server or for casts may take before the test fails (not a timing
# assertion: a healthy run needs a small fraction of it).
PATIENCE = 60.0


def required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            "%s is not set: run these tests through `cargo test -p l2pop --test neutron_driver` "
            "(or scripts/test), which builds the l2pop binary and sets it" % name
        )
    return value


def amqp_url():
    return os.environ.get("L2POP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")


def oslo_url():
    """The same broker as an oslo.messaging transport URL."""
    rest = amqp_url().split("://", 1)[1]
    rest = rest.rsplit("/", 1)[0]
    return "rabbit://%s/" % rest


def _broker():
    rest = amqp_url().split("://", 1)[1]
    credentials, hostport = rest.rsplit("/", 1)[0].split("@", 1)
    user, password = credentials.split(":", 1)
    return hostport, user, password


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class L2popServer:
    def __init__(self):
        self.binary = required_env("L2POP_BIN")
        self.dir = tempfile.mkdtemp(prefix="l2pop-neutron-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(self.dir, "server.toml")
        # A topic of its own: on a shared broker, agents' RPC calls to the default topic
        # (`l2pop-plugin`) from other test runs must not reach this server (nor the reverse).
        self.rpc_topic = "l2pop-neutron-test-%s" % os.path.basename(self.dir)[-8:]
        with open(self.config, "w") as config:
            config.write(
                '[server]\nlisten = "127.0.0.1:%d"\nname = "neutron-driver-test"\n'
                '[store]\nurl = "sqlite:%s/l2pop.db"\nleader_poll_ms = 100\n'
                '[bus]\nbackend = "rabbit"\nurl = "%s"\nrpc_topic = "%s"\n'
                '[auth]\nadmin_token = "%s"\n'
                % (self.port, self.dir, amqp_url(), self.rpc_topic, ADMIN_TOKEN)
            )
        self.process = None
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "server", "--config", self.config],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn")),
        )
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("l2pop server exited (%s): %s" % (self.process.returncode, self.log_text()))
            try:
                health = self.http.get(self.url + "/healthz", timeout=2).json()
                if health.get("role") == "active" and health.get("bus") == "up":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("l2pop server not active with its bus up: %s" % self.log_text())

    def kill(self):
        """SIGKILL: nothing graceful, as a crash or a host going away."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def close(self):
        """Kills the server and removes its folder (store, configuration, log)."""
        self.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as log:
            return log.read().decode(errors="replace")[-4000:]

    def get(self, path):
        response = self.http.get(self.url + path, headers={"X-Auth-Token": ADMIN_TOKEN}, timeout=10)
        response.raise_for_status()
        return response.json()


def networks_of(method, fdb_entries):
    if method == "update_fdb_entries":
        return set(fdb_entries.get("chg_ip", {}))
    return set(fdb_entries)


class Cast:
    """One l2pop cast as a consumer receives it."""

    def __init__(self, exchange, routing_key, message):
        self.exchange = exchange
        self.routing_key = routing_key
        self.method = message["method"]
        self.fdb_entries = message.get("args", {}).get("fdb_entries", {})
        self.position = message.get("_context_l2pop")
        self.unique_id = message.get("_unique_id")

    @property
    def host(self):
        """The target host of a host cast, None for a fanout."""
        if self.exchange == FANOUT_EXCHANGE:
            return None
        return self.routing_key[len(TOPIC) + 1:]

    def __repr__(self):
        return "%s %s %s" % (self.host or "fanout", self.method, json.dumps(self.fdb_entries, sort_keys=True))


class CastCapture:
    """Every cast to the scenario's hosts and networks, in publication order."""

    def __init__(self, hosts):
        hostport, user, password = _broker()
        self.connection = amqp.Connection(host=hostport, userid=user, password=password)
        self.connection.connect()
        self.channel = self.connection.channel()
        # Declared as oslo.messaging declares them (a mismatch is refused by the broker).
        self.channel.exchange_declare(FANOUT_EXCHANGE, "fanout", durable=False, auto_delete=True)
        self.channel.exchange_declare(CONTROL_EXCHANGE, "topic", durable=False, auto_delete=False)
        self.queue, _, _ = self.channel.queue_declare("", exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.queue, FANOUT_EXCHANGE, routing_key="")
        for host in hosts:
            self.channel.queue_bind(self.queue, CONTROL_EXCHANGE, routing_key="%s.%s" % (TOPIC, host))

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass

    def poll(self):
        """The casts queued now (each decoded), without waiting."""
        casts = []
        while True:
            message = self.channel.basic_get(self.queue, no_ack=True)
            if message is None:
                return casts
            envelope = json.loads(message.body)
            inner = json.loads(envelope["oslo.message"])
            casts.append(Cast(message.delivery_info["exchange"], message.delivery_info["routing_key"], inner))

    def until(self, done, what):
        """Casts until ``done(casts so far)`` holds; fails after PATIENCE."""
        casts = []
        deadline = time.monotonic() + PATIENCE
        while True:
            casts.extend(self.poll())
            if done(casts):
                return casts
            if time.monotonic() > deadline:
                raise AssertionError("casts never reached %s; got %r" % (what, casts))
            time.sleep(0.02)


class AgentTable:
    """An OVS agent's l2pop state for one host (see the module doc)."""

    def __init__(self, local_ip):
        self.local_ip = local_ip
        self.networks = {}

    def _network(self, network):
        return self.networks.setdefault(network, {"flood": set(), "ucast": {}, "arp": {}})

    def leave(self, network):
        """The host's last local port on ``network`` went: the agent reclaims its VLAN."""
        self.networks.pop(network, None)

    def apply(self, cast, local_networks):
        if cast.method == "update_fdb_entries":
            for network, vteps in cast.fdb_entries.get("chg_ip", {}).items():
                if network not in local_networks:
                    continue
                table = self._network(network)
                for vtep, change in vteps.items():
                    if vtep == self.local_ip:
                        continue
                    for mac, ip in change.get("before", []):
                        table["arp"].pop(ip, None)
                    for mac, ip in change.get("after", []):
                        table["arp"][ip] = mac
            return
        add = cast.method == "add_fdb_entries"
        for network, body in cast.fdb_entries.items():
            segment = local_networks.get(network)
            if segment is None or segment != (body["network_type"], body["segment_id"]):
                continue
            table = self._network(network)
            for vtep, entries in body["ports"].items():
                if vtep == self.local_ip:
                    continue
                for mac, ip in entries:
                    if (mac, ip) == FLOODING_ENTRY:
                        (table["flood"].add if add else table["flood"].discard)(vtep)
                    elif add:
                        table["ucast"][mac] = vtep
                        table["arp"][ip] = mac
                    else:
                        table["ucast"].pop(mac, None)
                        table["arp"].pop(ip, None)

    def view(self, rename):
        """{network name: {"flood": [...], "ucast": {...}, "arp": {...}}}, names via ``rename``."""
        return {
            rename(network): {
                "flood": sorted(table["flood"]),
                "ucast": dict(sorted(table["ucast"].items())),
                "arp": dict(sorted(table["arp"].items())),
            }
            for network, table in sorted(self.networks.items())
            if table["flood"] or table["ucast"] or table["arp"]
        }
