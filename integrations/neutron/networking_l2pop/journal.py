"""The journal: record in the change's transaction, deliver in order, retry until taken.

networking-odl's journal is the model (rows written in precommit, a thread per process woken
after commit and by a timer), simplified where l2pop allows it:

- **One order.** l2pop's engine is a single ordered owner, so rows are delivered strictly by
  ``seqnum``: the head row blocks the rest until the server takes or refuses it. No dependency
  graph is needed, and nothing is reordered.
- **One deliverer.** A lease row (``l2pop_journal_lease``) names the process that delivers; the
  others only record and kick. A process that dies loses the lease after ``lease_seconds``.
- **Retry or fail.** ``retry`` outcomes (server unreachable, restarting, 5xx, standby, bad
  token) keep the row at the head with a backoff (``retry_interval`` doubling up to
  ``max_retry_interval``); nothing behind it moves. A ``refused`` outcome (a 4xx about the
  row itself) marks the row ``failed`` with the server's answer, logs it, and delivery goes on.
- Delivered rows are deleted.
"""

import datetime
import json
import os
import socket
import threading

import requests
from sqlalchemy import exc as sa_exc
from neutron_lib import context as n_context
from neutron_lib.db import api as db_api
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log as logging

from networking_l2pop import client as l2pop_client
from networking_l2pop import config
from networking_l2pop import translate
from networking_l2pop.db import models

LOG = logging.getLogger(__name__)

LEASE_ID = 1


def _now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def record(plugin_context, object_type, object_uuid, operation, data):
    """Adds a pending row in the caller's transaction (call from *_precommit)."""
    with db_api.CONTEXT_WRITER.using(plugin_context):
        plugin_context.session.add(
            models.L2popJournal(
                object_type=object_type,
                object_uuid=object_uuid,
                operation=operation,
                data=json.dumps(data, sort_keys=True),
                state=models.PENDING,
                retry_count=0,
                created_at=_now(),
            )
        )


def pending_count(plugin_context):
    with db_api.CONTEXT_READER.using(plugin_context):
        return (
            plugin_context.session.query(models.L2popJournal)
            .filter_by(state=models.PENDING)
            .count()
        )


def failed_rows(plugin_context):
    with db_api.CONTEXT_READER.using(plugin_context):
        return [
            (row.seqnum, row.object_type, row.operation, row.object_uuid, row.last_error)
            for row in plugin_context.session.query(models.L2popJournal)
            .filter_by(state=models.FAILED)
            .order_by(models.L2popJournal.seqnum)
        ]


class Journal:
    """Delivers the journal of this process's database to the l2pop server."""

    def __init__(self, conf=cfg.CONF):
        options = conf[config.GROUP]
        self.options = options
        self.client = l2pop_client.L2popClient(options.url, options.token, options.timeout)
        self.holder = "%s:%d:%x" % (socket.gethostname(), os.getpid(), id(self))
        # The lease is renewed before each row; a request must end (timeout) well before it
        # expires, or another process could send the next rows while this one is still sending.
        self.lease_seconds = max(options.lease_seconds, 2 * options.timeout + 1)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # ---- the thread ----

    def start(self):
        """Starts the thread unless running (again in a forked neutron-server worker, whose
        copy of the parent's thread is not running)."""
        if not self.options.journal_thread or self._stop.is_set():
            return
        if self._pid != os.getpid():
            # A forked worker: the parent's HTTP connections and lock state are not ours.
            self._pid = os.getpid()
            self.holder = "%s:%d:%x" % (socket.gethostname(), self._pid, id(self))
            self.client = l2pop_client.L2popClient(self.options.url, self.options.token, self.options.timeout)
            self._lock = threading.Lock()
            self._thread = None
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="l2pop-journal", daemon=True)
            self._thread.start()

    def stop(self, timeout=10.0):
        """Ends the thread after the row in flight (waits up to ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def kick(self):
        """Something was committed: deliver soon (from *_postcommit)."""
        self.start()
        self._wake.set()

    def _run(self):
        while not self._stop.is_set():
            self._wake.wait(self.options.sync_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                wait = self.deliver_pending()
            except (db_exc.DBError, sa_exc.OperationalError, sa_exc.IntegrityError) as error:
                # A lock, a lost connection, two processes creating the lease row: retry soon.
                LOG.warning("l2pop journal: database busy (%s); retrying", error)
                wait = self.options.retry_interval
            except Exception:  # keep the thread: the next wake retries
                LOG.exception("l2pop journal: delivery failed")
                wait = self.options.retry_interval
            if wait is not None:
                self._wake.wait(wait)

    # ---- delivery ----

    def deliver_pending(self, context=None):
        """Delivers rows, oldest first, until none is left or the head must wait.

        Returns None when the journal is empty (or another process holds the lease), else
        the seconds until the head row may be retried.
        """
        context = context or n_context.get_admin_context()
        with self._lock:
            while True:
                if not self._take_lease(context):
                    return None
                row = self._head(context)
                if row is None:
                    return None
                seqnum, object_type, operation, data, retry_count, next_attempt = row
                now = _now()
                if next_attempt is not None and next_attempt > now:
                    return (next_attempt - now).total_seconds()
                try:
                    outcome = translate.deliver(self.client, object_type, operation, json.loads(data))
                except requests.RequestException as error:
                    outcome = l2pop_client.Outcome(l2pop_client.RETRY, "unreachable: %s" % error)
                if outcome.kind == l2pop_client.DONE:
                    if outcome.detail:
                        LOG.warning("l2pop journal row %d (%s %s): %s", seqnum, object_type, operation, outcome.detail)
                    self._delete(context, seqnum)
                elif outcome.kind == l2pop_client.REFUSED:
                    LOG.error(
                        "l2pop server refused journal row %d (%s %s %s): %s",
                        seqnum, object_type, operation, data, outcome.detail,
                    )
                    self._fail(context, seqnum, outcome.detail)
                else:
                    delay = min(
                        self.options.retry_interval * (2 ** min(retry_count, 16)),
                        self.options.max_retry_interval,
                    )
                    LOG.warning(
                        "l2pop journal row %d (%s %s) not taken (%s); retry in %.1f s",
                        seqnum, object_type, operation, outcome.detail, delay,
                    )
                    self._retry_later(context, seqnum, outcome.detail, delay)
                    return delay

    def _take_lease(self, context):
        now = _now()
        expires = now + datetime.timedelta(seconds=self.lease_seconds)
        Lease = models.L2popJournalLease
        with db_api.CONTEXT_WRITER.using(context):
            session = context.session
            if session.query(Lease).filter_by(id=LEASE_ID).first() is None:
                session.add(Lease(id=LEASE_ID, holder=self.holder, expires_at=expires))
                return True
            taken = (
                session.query(Lease)
                .filter(Lease.id == LEASE_ID)
                .filter((Lease.holder == self.holder) | (Lease.expires_at < now))
                .update({"holder": self.holder, "expires_at": expires}, synchronize_session=False)
            )
            return taken == 1

    def _head(self, context):
        Journal = models.L2popJournal
        with db_api.CONTEXT_READER.using(context):
            row = (
                context.session.query(Journal)
                .filter_by(state=models.PENDING)
                .order_by(Journal.seqnum)
                .first()
            )
            if row is None:
                return None
            return (row.seqnum, row.object_type, row.operation, row.data, row.retry_count, row.next_attempt_at)

    def _delete(self, context, seqnum):
        with db_api.CONTEXT_WRITER.using(context):
            context.session.query(models.L2popJournal).filter_by(seqnum=seqnum).delete()

    def _fail(self, context, seqnum, detail):
        with db_api.CONTEXT_WRITER.using(context):
            context.session.query(models.L2popJournal).filter_by(seqnum=seqnum).update(
                {"state": models.FAILED, "last_error": detail[:4000]}
            )

    def _retry_later(self, context, seqnum, detail, delay):
        with db_api.CONTEXT_WRITER.using(context):
            context.session.query(models.L2popJournal).filter_by(seqnum=seqnum).update(
                {
                    "retry_count": models.L2popJournal.retry_count + 1,
                    "last_error": detail[:4000],
                    "next_attempt_at": _now() + datetime.timedelta(seconds=delay),
                }
            )
