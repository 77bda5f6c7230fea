"""Neutron's own l2pop notifier sends add/remove/update casts, fanout and host.

Usage: neutron_notifier.py URL TOPIC_PREFIX HOST NET1 NET2 TIMEOUT

L2populationAgentNotifyAPI(topic=TOPIC_PREFIX) publishes to TOPIC_PREFIX-l2population-update
(Neutron passes topics.AGENT = 'q-agent-notifier'); the context is
neutron_lib.context.get_admin_context(); ports lists hold l2pop_rpc.PortInfo tuples, as the
mechanism driver builds them.
"""
import sys

from common import die_after, emit, setup

url, prefix, host, net1, net2, timeout = sys.argv[1:7]
die_after(float(timeout))
setup(url)

from neutron_lib import constants as n_const  # noqa: E402
from neutron_lib import context as n_context  # noqa: E402
from neutron_lib import rpc as n_rpc  # noqa: E402
from neutron.plugins.ml2.drivers.l2pop import rpc as l2pop_rpc  # noqa: E402
from oslo_config import cfg  # noqa: E402

n_rpc.init(cfg.CONF)
PI = l2pop_rpc.PortInfo
FLOOD = PI(*n_const.FLOODING_ENTRY)
api = l2pop_rpc.L2populationAgentNotifyAPI(topic=prefix)
ctx = n_context.get_admin_context()

add_fanout = {net1: {'segment_id': 1001, 'network_type': 'vxlan', 'ports': {
    '192.0.2.11': [FLOOD, PI('fa:16:3e:aa:bb:cc', '10.0.0.5')],
    '192.0.2.12': [FLOOD, PI('fa:16:3e:11:22:33', '10.0.0.7'),
                   PI('fa:16:3e:11:22:33', '2001:db8::7')]}}}
add_host = {net2: {'segment_id': 2002, 'network_type': 'gre', 'ports': {
    '198.51.100.3': [FLOOD]}}}
remove_fanout = {net1: {'segment_id': 1001, 'network_type': 'vxlan', 'ports': {
    '192.0.2.11': [PI('fa:16:3e:dd:ee:ff', '10.0.0.9')]}}}
update_fanout = {'chg_ip': {net1: {'192.0.2.11': {
    'before': [PI('fa:16:3e:aa:bb:cc', '10.0.0.5')],
    'after': [PI('fa:16:3e:aa:bb:cc', '10.0.0.6')]}}}}
update_host = {'chg_ip': {net2: {'198.51.100.3': {
    'after': [PI('fa:16:3e:00:00:01', '10.1.0.10')]}}}}
remove_host = {net2: {'segment_id': 2002, 'network_type': 'gre', 'ports': {
    '198.51.100.3': [FLOOD]}}}

api.add_fdb_entries(ctx, add_fanout)
api.add_fdb_entries(ctx, add_host, host)
api.remove_fdb_entries(ctx, remove_fanout)
api.update_fdb_entries(ctx, update_fanout)
api.update_fdb_entries(ctx, update_host, host)
api.remove_fdb_entries(ctx, remove_host, host)
emit(event='sent', count=6, topic=api.topic_l2pop_update)
n_rpc.cleanup()
