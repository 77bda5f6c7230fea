"""Shared set-up of the interop helpers: oslo.messaging configured as Neutron configures it.

Every helper prints one JSON object per line on stdout (the Rust test reads them) and logs to
stderr. oslo.messaging 18.x registers some options only on the global cfg.CONF, so it is used.
"""
import json
import os
import sys
import tempfile
import threading

from oslo_config import cfg
import oslo_messaging as om


def setup(url, thread_pool=None):
    """Neutron's transport: control_exchange 'neutron', transport_url from the test, set the
    way a Neutron service gets them (a config file). `thread_pool` sets the RPC server's
    executor_thread_pool_size: with the default (64) oslo dispatches the messages of one
    queue concurrently, so handlers may run out of queue order."""
    if url.startswith('amqp://'):
        # oslo.messaging names its RabbitMQ driver 'rabbit'.
        url = 'rabbit://' + url[len('amqp://'):]
    om.set_transport_defaults(control_exchange='neutron')
    with tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False) as conf:
        conf.write('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = neutron\n' % url)
        if thread_pool:
            conf.write('executor_thread_pool_size = %d\n' % thread_pool)
    try:
        cfg.CONF(['--config-file', conf.name], project='l2pop-interop')
    finally:
        os.unlink(conf.name)


def emit(**event):
    sys.stdout.write(json.dumps(event) + '\n')
    sys.stdout.flush()


def die_after(seconds):
    """Never outlive the test that started us."""
    def _die():
        sys.stderr.write('interop helper: timed out after %ss\n' % seconds)
        sys.stderr.flush()
        os._exit(3)
    timer = threading.Timer(seconds, _die)
    timer.daemon = True
    timer.start()


def wait_for_stdin_eof():
    """The Rust test closes our stdin (or kills us) when it is done."""
    for _ in sys.stdin:
        pass
