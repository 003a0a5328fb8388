"""The stack a load or fault run drives: a PostgreSQL database of its own, filled with the
sample bank, the centres and a population, and gunicorn instances on ports of their own.

Each instance stands for one host: its own master and workers (sized to the cores), all
sharing the database, the secret key and the content keys through ``CBT_VAR_DIR``.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import signal
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
    from itembank.program import load_program
    from itembank.sample import load_sample_bank
    from loadtests.population import populate
    from persistence import create_database_engine, session_factory, upgrade_database

    os.environ["CBT_VAR_DIR"] = str(var_dir)  # the content keys the servers will read
    engine = create_database_engine(url)
    try:
        upgrade_database(engine)
        program = load_program()
        with session_factory(engine)() as session:
            load_sample_bank(session, program)
            load_demo_centres(session)
            extend_calendar(session, program, local_today(program, dt.datetime.now(dt.timezone.utc)), 9)
            population = populate(session, program, candidates=candidates, slot_starts_at=slot_starts_at,
                                  applicants=applicants)
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:delivery.web.gunicorn_config",
             "-b", f"127.0.0.1:{self.port}", self.app],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_dir}/{self.name}.log")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
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
