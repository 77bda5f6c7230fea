"""A Python oslo.messaging RPCClient calling l2pop's RpcServer.

Usage: rpc_client.py URL TOPIC SERVER TIMEOUT
"""
import sys

from common import die_after, emit, setup

url, topic, server, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
die_after(timeout)
setup(url)

import oslo_messaging as om  # noqa: E402
from oslo_config import cfg  # noqa: E402

transport = om.get_rpc_transport(cfg.CONF)
client = om.get_rpc_client(transport, om.Target(topic=topic, version='1.0'))
ctx = {'request_id': 'req-python-1', 'user_id': None}
call = client.prepare(timeout=timeout / 2)

emit(event='echo', result=call.call(ctx, 'echo', host='h1', devices=['a', 'é']))
emit(event='echo_server',
     result=call.prepare(server=server).call(ctx, 'echo', n=1))
try:
    call.call(ctx, 'fail', why='because')
    emit(event='no_error')
except om.RemoteError as e:
    emit(event='remote_error', exc_type=e.exc_type, value=e.value,
         text=str(e))
call.cast(ctx, 'note', seen=True)
emit(event='done')
transport.cleanup()
