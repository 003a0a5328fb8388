"""gunicorn settings for production: ``gunicorn -c python:delivery.web.gunicorn_config 'delivery.web:create_app()'``.

Workers are processes, sized to the cores (``CBT_WORKERS``, default the core count);
each runs a few threads (``CBT_THREADS``, 8) so that a request waiting on the database
does not hold a core. Nothing a request needs lives in one worker's memory only: the
session is a signed cookie, the clock and the answers are in the database, so any
worker of any host can serve any request. See docs/loadtests.md for the measurements
these defaults come from.
"""
from persistence.settings import load_settings

_deployment = load_settings()
bind = _deployment.bind
workers = _deployment.workers
worker_class = "gthread"
threads = _deployment.threads
# A synchronised start opens thousands of connections within seconds: let them queue
# in the kernel rather than be refused (the kernel caps this at net.core.somaxconn).
backlog = 4096
# Idle keep-alive connections per worker; the page polls the clock, so connections are reused.
worker_connections = 2000
keepalive = 30
# A worker that hangs is replaced; the longest request (a bank import) stays well below this.
timeout = 60
graceful_timeout = 20
# Each worker builds its own app (and database pool) after the fork: no connection is shared.
preload_app = False
accesslog = _deployment.access_log
errorlog = "-"
loglevel = _deployment.log_level


def on_starting(server):
    """Check the database once in the master, before any worker forks: an unreachable or
    unmigrated database stops the server with one line, not one traceback per worker."""
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
