"""The serving stack on this machine, as in production: nginx in front (TLS, buffering of slow
clients, static files, a balancer over the instances), two or more gunicorn instances, and
PostgreSQL. The load run, the fault run and a production-like local run all use it, so every
figure is measured through nginx.

Each instance stands for one host: its own master and workers (sized to the cores), all
sharing the database, the secret key and the content keys through ``CBT_VAR_DIR``. nginx is
Debian's, run as a child process with a prefix of its own (config, logs, pid, temp files),
its own ports and a self-signed certificate: a system nginx, if any, is left alone.

    python -m loadtests.stack up      # or make stack-up: PostgreSQL started if stopped, the
                                      # database cbt_stack made and filled once, 2 instances,
                                      # nginx on https://127.0.0.1:8443 (http :8080 redirects)
    python -m loadtests.stack status
    python -m loadtests.stack down    # or make stack-down (the database is kept; --drop drops it)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get("CBT_LOAD_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STACK_DIR = REPO / "var" / "stack"
PRODUCT_APP = "delivery.web:create_app()"
BASELINE_APP = "loadtests.baseline:create_app()"
# The CSRF token as the pages carry it: in each form, and in the page's head for the JSON API.
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def recreate_database(name: str) -> str:
    """Drop and create the database ``name``; returns its URL."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CBT_DATABASE_URL=url, CBT_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def prepare(url: str, var_dir: Path, *, candidates: int, slot_starts_at: dt.datetime, applicants: int = 0):
    """Migrate, load the sample bank, the centres (a week of calendar) and the population."""
    from centers.calendar import extend_calendar, local_today
    from centers.demo import load_demo_centres
    from delivery.web import _secret_key
    from itembank.program import load_program
    from itembank.sample import load_sample_bank
    from loadtests.population import populate
    from persistence import create_database_engine, session_factory, upgrade_database
    from persistence.settings import load_settings

    os.environ["CBT_VAR_DIR"] = str(var_dir)  # the content keys the servers will read
    # The servers' secret key (made now if need be), which signs the seat PCs' cookies.
    secret_key = _secret_key(load_settings())
    engine = create_database_engine(url)
    try:
        upgrade_database(engine)
        program = load_program()
        with session_factory(engine)() as session:
            load_sample_bank(session, program)
            load_demo_centres(session)
            extend_calendar(session, program, local_today(program, dt.datetime.now(dt.timezone.utc)), 9)
            population = populate(session, program, candidates=candidates, slot_starts_at=slot_starts_at,
                                  applicants=applicants, secret_key=secret_key)
            session.commit()
    finally:
        engine.dispose()
    return population


def move_slot_start(url: str, starts_at: dt.datetime) -> None:
    """Start the population's slot at ``starts_at``: logins open before it, Start from it."""
    from loadtests.population import SLOT_KIND

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE slots SET starts_at = %s WHERE kind = %s", (starts_at, SLOT_KIND))


@dataclass
class Server:
    """One gunicorn instance (one "host"): start, find its workers, kill them, restart."""

    name: str
    port: int
    env: dict[str, str]
    app: str = PRODUCT_APP
    log_dir: Path = Path("var/load")
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def ready_path(self) -> str:
        return "/readyz" if self.app == PRODUCT_APP else "/"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the master, without waiting for it to be ready (:meth:`wait_ready`)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{self.name}.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:delivery.web.gunicorn_config",
                 "-b", f"127.0.0.1:{self.port}", self.app],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_dir}/{self.name}.log")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer on {self.url} within {timeout:.0f} s")

    def workers(self) -> list[int]:
        """The pids of the master's worker processes."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except FileNotFoundError:
            return []

    def kill_worker(self) -> int:
        """kill -9 one worker (the master starts another); returns its pid."""
        pid = self.workers()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self) -> None:
        """kill -9 the master and every worker, as a host that loses power."""
        if self.process is None:
            return
        try:
            # The master leads its own process group (start_new_session): this takes the workers too.
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop gracefully (in-flight requests finish), or kill after a while."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


def restart_postgresql() -> None:
    """Restart the machine's PostgreSQL cluster (every connection is cut)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
                   check=True)
    for _ in range(60):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back within 30 s")


def ensure_postgresql() -> None:
    """Start the machine's PostgreSQL cluster if it is not running (as .ci/run does)."""
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
        return
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
    for _ in range(60):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not start within 30 s")


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx (Debian's package)")
    return found


@dataclass
class Nginx:
    """The stack's own nginx (a child process, not a daemon) in front of ``upstreams``."""

    prefix: Path
    upstreams: list[str]
    http_port: int = 8080
    https_port: int = 8443
    redirect_http: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Plain HTTP (served as is only when ``redirect_http`` is off: the load run)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def certificate(self) -> Path:
        return self.prefix / "tls" / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the stack's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def configure(self) -> Path:
        from delivery.deploy import render_main, render_site, self_signed_certificate

        for sub in ("conf", "logs", "temp", "tls"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        certificate, key = self_signed_certificate(self.prefix / "tls")
        (self.prefix / "conf" / "cbt-site.conf").write_text(render_site(
            upstreams=self.upstreams, certificate=certificate, key=key, https_port=self.https_port,
            http_port=self.http_port, server_name="localhost 127.0.0.1", access_log=str(self.prefix / "logs" / "access.json"),
            redirect_http=self.redirect_http))
        main = self.prefix / "conf" / "nginx.conf"
        main.write_text(render_main(prefix=self.prefix))
        checked = subprocess.run([nginx_binary(), "-t", "-q", "-p", str(self.prefix), "-c", str(main),
                                  "-e", str(self.prefix / "logs" / "error.log")], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refuses its configuration: {checked.stderr.strip()}")
        return main

    def start(self, timeout: float = 20.0) -> None:
        main = self.configure()
        with open(self.prefix / "logs" / "stderr.log", "ab") as log:
            self.process = subprocess.Popen(
                [nginx_binary(), "-p", str(self.prefix), "-c", str(main), "-e", str(self.prefix / "logs" / "error.log"),
                 "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}; see {self.prefix}/logs/")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not listen on {self.https_port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: requests in flight finish
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


@dataclass
class Stack:
    """nginx in front of ``instances`` gunicorn instances sharing one database."""

    url: str  # the database
    var_dir: Path
    log_dir: Path
    instances: int = 2
    first_port: int = 8101
    http_port: int = 8080
    https_port: int = 8443
    app: str = PRODUCT_APP
    redirect_http: bool = True
    env: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(init=False)
    nginx: Nginx = field(init=False)

    def __post_init__(self):
        env = environment(self.url, self.var_dir, CBT_TRUSTED_PROXIES="1",
                          # Secure cookies (__Host-session) need HTTPS all the way to the browser.
                          CBT_SECURE_COOKIES="1" if self.redirect_http else "0", **self.env)
        self.servers = [Server(f"host{i + 1}", self.first_port + i, env, app=self.app, log_dir=self.log_dir)
                        for i in range(self.instances)]
        self.nginx = Nginx(self.log_dir / "nginx", [f"127.0.0.1:{s.port}" for s in self.servers],
                           self.http_port, self.https_port, self.redirect_http)

    @property
    def front(self) -> str:
        """The URL clients use: HTTPS, or plain HTTP through the same nginx for a load run."""
        return self.nginx.https_url if self.redirect_http else self.nginx.url

    def up(self) -> None:
        try:
            for server in self.servers:  # all at once: each takes a few seconds to boot its workers
                server.launch()
            for server in self.servers:
                server.wait_ready(60.0)
            self.nginx.start()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        self.nginx.stop()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Stack:
        self.up()
        return self

    def __exit__(self, *_exc) -> None:
        self.down()


# ---- python -m loadtests.stack up | down | status -------------------------------------------------

STATE = STACK_DIR / "state.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _up(args) -> int:
    if STATE.exists() and any(_alive(pid) for pid in json.loads(STATE.read_text())["pids"].values()):
        print(f"the stack is already up ({STATE}); `python -m loadtests.stack down` first", file=sys.stderr)
        return 1
    ensure_postgresql()
    var_dir = STACK_DIR / "var"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)).fetchone()
    url = database_url(args.database) if exists and not args.fresh else recreate_database(args.database)
    env = environment(url, var_dir)
    # The database made and filled once (the sample bank, the centres, the demo people, today's slots).
    for command in (["db", "upgrade"], ["sample", "load"], ["centres", "load"], ["demo"]):
        subprocess.run([str(Path(sys.executable).with_name("cbt")), *command], cwd=REPO, env=env, check=True,
                       stdout=None if command == ["demo"] else subprocess.DEVNULL)
    stack = Stack(url, var_dir, STACK_DIR / "logs", instances=args.instances, first_port=args.first_port,
                  http_port=args.http_port, https_port=args.https_port, redirect_http=not args.plain_http)
    stack.up()
    pids = {server.name: server.process.pid for server in stack.servers}
    pids["nginx"] = stack.nginx.process.pid
    STATE.write_text(json.dumps({"pids": pids, "database": args.database, "front": stack.front,
                                 "instances": [s.url for s in stack.servers]}, indent=1))
    print(f"\nthe stack is up: {stack.front} (nginx; certificate {stack.nginx.certificate})")
    for server in stack.servers:
        print(f"  {server.name}: {server.url} (metrics: {server.url}/metrics)")
    print(f"  database {url}; logs in {STACK_DIR / 'logs'}; `python -m loadtests.stack down` stops it")
    return 0


def _down(args) -> int:
    if not STATE.exists():
        print("the stack is not up")
        return 0
    state = json.loads(STATE.read_text())
    for name, pid in state["pids"].items():
        if _alive(pid):
            try:  # each leads its own process group (its workers): SIGQUIT is graceful for nginx
                os.killpg(pid, signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in state["pids"].values()):
        time.sleep(0.2)
    for pid in state["pids"].values():
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    STATE.unlink()
    if args.drop:
        drop_database(state["database"])
    print("the stack is down" + (f"; database {state['database']} dropped" if args.drop else ""))
    return 0


def _status(_args) -> int:
    if not STATE.exists():
        print("the stack is not up")
        return 1
    state = json.loads(STATE.read_text())
    for name, pid in state["pids"].items():
        print(f"  {name}: pid {pid} {'running' if _alive(pid) else 'GONE'}")
    context = ssl.create_default_context(cafile=str(STACK_DIR / "logs" / "nginx" / "tls" / "cert.pem"))
    for url in [state["front"], *state["instances"]]:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5, context=context if url.startswith("https") else None) as r:
                print(f"  {url}/readyz: {r.status} {r.read().decode()}")
        except (urllib.error.URLError, OSError) as error:
            print(f"  {url}/readyz: {error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.stack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start PostgreSQL (if stopped), the instances and nginx")
    up.add_argument("--instances", type=int, default=2)
    up.add_argument("--database", default="cbt_stack")
    up.add_argument("--fresh", action="store_true", help="drop and make the database again")
    up.add_argument("--first-port", type=int, default=8201, help="the first instance's port (then +1, +2...)")
    up.add_argument("--http-port", type=int, default=8080)
    up.add_argument("--https-port", type=int, default=8443)
    up.add_argument("--plain-http", action="store_true", help="serve plain HTTP too instead of redirecting")
    down = commands.add_parser("down", help="stop nginx and the instances (PostgreSQL keeps running)")
    down.add_argument("--drop", action="store_true", help="drop the database too")
    commands.add_parser("status", help="what runs, and each /readyz")
    args = parser.parse_args(argv)
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    return {"up": _up, "down": _down, "status": _status}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
