"""A Neutron l2pop agent endpoint on a real oslo.messaging RPC server.

Usage: l2pop_agent.py URL TOPIC HOST TIMEOUT

Serves Target(topic=TOPIC, server=HOST) through neutron_lib.rpc (its RequestContextSerializer
builds a neutron_lib Context from the _context_* keys, as in a real agent). The l2pop endpoint
subclasses Neutron's own L2populationRpcCallBackMixin, so its add/remove/update_fdb_entries
unmarshal the payload exactly as the OVS and Linux bridge agents do; fdb_add/fdb_remove/
fdb_update print what the mixin hands them. An extra endpoint answers echo/fail calls.
"""
import sys

from common import die_after, emit, setup, wait_for_stdin_eof

url, topic, host, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
die_after(timeout)
# One dispatch thread: handlers run in the order of each queue (see common.setup).
setup(url, thread_pool=1)

from neutron_lib import rpc as n_rpc  # noqa: E402
import oslo_messaging as om  # noqa: E402
from neutron.plugins.ml2.drivers.l2pop import rpc as l2pop_rpc  # noqa: E402
from neutron.plugins.ml2.drivers.l2pop.rpc_manager import (  # noqa: E402
    l2population_rpc)

n_rpc.init(__import__('oslo_config').cfg.CONF)


def portinfos(value):
    """True when every [mac, ip] in the unmarshalled payload became a PortInfo."""
    if isinstance(value, l2pop_rpc.PortInfo):
        return True
    if isinstance(value, dict):
        return all(portinfos(v) for v in value.values())
    if isinstance(value, list):
        return all(portinfos(v) for v in value)
    return not isinstance(value, (tuple,))


class L2popAgent(l2population_rpc.L2populationRpcCallBackMixin):
    # The OVS agent's RPC version: any 1.x message is dispatched to it.
    target = om.Target(version='1.7')

    def _record(self, method, context, fdb_entries):
        ports = [n.get('ports', {}) for n in fdb_entries.values()
                 if isinstance(n, dict)]
        chg = [fdb_entries.get('chg_ip', {})]
        emit(event=method,
             fdb_entries=fdb_entries,
             all_portinfo=portinfos(ports) and portinfos(chg),
             context_class=type(context).__module__ + '.' +
             type(context).__name__,
             is_admin=context.is_admin,
             roles=sorted(context.roles),
             request_id=context.request_id,
             context=context.to_dict())

    def fdb_add(self, context, fdb_entries):
        self._record('fdb_add', context, fdb_entries)

    def fdb_remove(self, context, fdb_entries):
        self._record('fdb_remove', context, fdb_entries)

    def fdb_update(self, context, fdb_entries):
        self._record('fdb_update', context, fdb_entries)


class Echo:
    target = om.Target(version='1.0')

    def echo(self, context, **kwargs):
        return {'kwargs': kwargs, 'request_id': context.request_id}

    def fail(self, context, message):
        raise ValueError(message)


server = n_rpc.get_server(om.Target(topic=topic, server=host, fanout=True),
                          [L2popAgent(), Echo()])
server.start()
emit(event='ready')
wait_for_stdin_eof()
server.stop()
server.wait()
