"""gunicorn settings for production: ``gunicorn -c python:delivery.web.gunicorn_config 'delivery.web:create_app()'``.

Workers are processes, sized to the cores (``CBT_WORKERS``, default the core count);
each runs a few threads (``CBT_THREADS``, 8) so that a request waiting on the database
does not hold a core. Nothing a request needs lives in one worker's memory only: the
session is a signed cookie, the clock and the answers are in the database, so any
worker of any host can serve any request. See docs/loadtests.md for the measurements
these defaults come from, and docs/deployment.md for nginx in front.

Metrics: every worker writes its values under ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
temporary folder per server unless set; emptied at start, a dead worker's gauges dropped),
so that ``/metrics`` on any worker reports the whole instance. Logs: one JSON object a
line on stderr (``CBT_LOG_FORMAT=text`` for plain lines), with the request id.
"""
import shutil
import tempfile
from pathlib import Path

from persistence.settings import export_metrics_dir, load_settings

_deployment = load_settings()
bind = _deployment.bind
workers = _deployment.workers
worker_class = "gthread"
threads = _deployment.threads
# A synchronised start opens thousands of connections within seconds: let them queue
# in the kernel rather than be refused (the kernel caps this at net.core.somaxconn).
backlog = 4096
# Idle keep-alive connections per worker; nginx keeps a few open to each instance and reuses them.
worker_connections = 2000
keepalive = 30
# A worker that hangs is replaced; the longest request (a bank import) stays well below this.
timeout = 60
graceful_timeout = 20
# Each worker builds its own app (and database pool) after the fork: no connection is shared.
preload_app = False
# gunicorn 25+ opens a control socket at one path per user: several servers on a host (the load
# run's, the tests') would take it from each other, and nothing of ours uses it.
control_socket_disable = True
# X-Forwarded-Proto is taken from these peers only (the app applies the same list: CBT_PROXY_ADDRESSES).
forwarded_allow_ips = ",".join(_deployment.proxy_addresses)
accesslog = _deployment.access_log
errorlog = "-"
loglevel = _deployment.log_level
logger_class = "delivery.web.observability.GunicornLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}i)s'
logconfig_dict = None  # set below, once the module that holds the formatter may be imported

# prometheus_client chooses its multiprocess mode from this variable when it is first imported,
# which in a worker happens after the fork: set it here, in the master, before that.
_made_metrics_dir = _deployment.metrics_dir is None
_metrics_dir = Path(tempfile.mkdtemp(prefix="cbt-metrics-")) if _made_metrics_dir else _deployment.metrics_dir
export_metrics_dir(_metrics_dir)

from delivery.web.observability import gunicorn_logging_config  # noqa: E402 (after the variable is set)

logconfig_dict = gunicorn_logging_config(_deployment.log_level, _deployment.log_format, _deployment.access_log)


def on_starting(server):
    """Check the database once in the master, before any worker forks: an unreachable or
    unmigrated database stops the server with one line, not one traceback per worker.
    Then empty the metrics folder: values of an earlier run of this server would be counted again."""
    from persistence import create_database_engine
    from persistence.migrate import SchemaError, check_schema

    engine = create_database_engine()
    try:
        check_schema(engine)
    except SchemaError as error:
        server.log.error("cannot start: %s", error)
        raise SystemExit(4) from None  # gunicorn's own code for "the application could not load"
    finally:
        engine.dispose()
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker's gauges (connections in use) go with it; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, path=str(_metrics_dir))


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
