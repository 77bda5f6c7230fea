"""The `[l2pop_server]` options (ml2_conf.ini or neutron.conf)."""

from oslo_config import cfg

GROUP = "l2pop_server"

OPTS = [
    cfg.StrOpt(
        "url",
        default="http://127.0.0.1:9696",
        help="Base URL of the l2pop server's REST API (its [server] listen address).",
    ),
    cfg.StrOpt(
        "token",
        secret=True,
        default="",
        help="The l2pop server's admin token ([auth] admin_token), sent as X-Auth-Token.",
    ),
    cfg.FloatOpt(
        "timeout",
        default=10.0,
        min=0.1,
        help="Seconds one HTTP request to the l2pop server may take.",
    ),
    cfg.FloatOpt(
        "retry_interval",
        default=1.0,
        min=0.0,
        help="Seconds before the first retry of a journal row the server could not take "
        "(unreachable, 5xx, standby); doubles per attempt up to max_retry_interval.",
    ),
    cfg.FloatOpt(
        "max_retry_interval",
        default=30.0,
        min=0.0,
        help="Upper bound of the retry backoff, in seconds.",
    ),
    cfg.FloatOpt(
        "sync_interval",
        default=5.0,
        min=0.1,
        help="Seconds between journal scans when nothing kicks the delivery thread "
        "(rows written by other neutron-server processes are delivered within this).",
    ),
    cfg.IntOpt(
        "lease_seconds",
        default=30,
        min=1,
        help="How long one neutron-server process holds the journal's delivery lease "
        "without renewing it; another process takes over after that. At least twice "
        "`timeout` plus one second is used, so that a request in flight ends before the "
        "lease can pass to another process.",
    ),
    cfg.BoolOpt(
        "journal_thread",
        default=True,
        help="Deliver the journal from a thread in every neutron-server process (only the "
        "lease holder sends). Tests turn it off and call deliver_pending() themselves.",
    ),
    cfg.StrOpt(
        "default_project_id",
        default="neutron",
        help="Project recorded in l2pop for Neutron resources that have none (HA router "
        "networks, some service ports): l2pop requires one.",
    ),
]


def register_opts(conf=cfg.CONF):
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
