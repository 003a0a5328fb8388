"""The serving stack as it runs in production, on this machine (loadtests.stack): Debian's
nginx in front of two gunicorn instances with the production settings, on the test's own
database. What an operator relies on: HTTPS with plain HTTP redirected, the request id from
nginx in the app's JSON log lines, the client's address as nginx saw it, static files from
nginx, /metrics kept inside and added up over each instance's workers, slow clients held by
nginx, and a clear 503 when no instance answers."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests.slowclients import SlowClients
from loadtests.stack import Stack, nginx_binary
from persistence.settings import load_settings

try:
    nginx_binary()
    NGINX = True
except RuntimeError:
    NGINX = False

pytestmark = pytest.mark.skipif(not NGINX, reason="nginx is not installed (apt-get install nginx; .ci/run does)")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def stack(database_url, tmp_path):
    first, http_port, https_port = free_ports(3)
    if first + 1 in (http_port, https_port):  # the instances take first and first + 1
        first = max(http_port, https_port) + 1
    settings = load_settings()
    # The content keys the test database is encrypted with (the instances' var folder is another).
    keys = {} if settings.content_keys else {"CBT_CONTENT_KEY_FILE": str(
        (settings.content_key_file or settings.development_key_file).resolve())}
    stack = Stack(database_url, tmp_path / "var", tmp_path / "logs", instances=2, first_port=first,
                  http_port=http_port, https_port=https_port,
                  env={"CBT_WORKERS": "2", "CBT_THREADS": "2", "CBT_LOG_LEVEL": "info", "CBT_SECRET_KEY": "stack-test",
                       **keys})
    with stack:
        yield stack


def get(stack, path: str, *, direct: str | None = None, headers: dict | None = None, timeout: float = 10):
    """(status, headers, body) through nginx over HTTPS, or ``direct`` to an instance's URL."""
    url = (direct or stack.front) + path
    request = urllib.request.Request(url, headers=headers or {})
    context = None if direct else stack.nginx.ssl_context()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def app_log(stack) -> list[dict]:
    lines = []
    for server in stack.servers:
        for line in (stack.log_dir / f"{server.name}.log").read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    return condition()


def test_the_stack_as_in_production(stack):
    """One stack for every check (it takes seconds to start): the 503 with no instance is last."""
    through_nginx(stack)
    metrics_add_up_over_workers_and_outlive_a_killed_one(stack)
    slow_clients_hold_nginx_connections_not_the_app(stack)
    with_no_instance_answering_nginx_says_503_in_json_with_the_request_id(stack)


def through_nginx(stack):
    status, headers, body = get(stack, "/readyz", headers={"X-Forwarded-For": "203.0.113.9",
                                                           "X-Request-ID": "forged-by-the-client"})
    assert status == 200 and json.loads(body)["status"] == "ready"
    request_id = headers["X-Request-ID"]
    assert len(request_id) == 32 and request_id != "forged-by-the-client"
    # nginx's id is the app's: in its JSON request line, with the client's address as nginx saw it
    # (a header the client wrote itself is not believed).
    line = wait_for(lambda: [entry for entry in app_log(stack) if entry.get("request_id") == request_id])
    assert line and line[0]["logger"] == "delivery.web.requests" and line[0]["path"] == "/readyz"
    assert line[0]["client"] == "127.0.0.1"
    access = wait_for(lambda: [json.loads(x) for x in (stack.nginx.prefix / "logs" / "access.json").read_text()
                               .splitlines() if request_id in x])
    assert access and access[0]["status"] == 200 and access[0]["tls"].startswith("TLS")

    # Plain HTTP is redirected to HTTPS; the session cookie is a Secure __Host- cookie.
    plain = urllib.request.Request(stack.nginx.url + "/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(plain, timeout=10)
    assert redirect.value.code == 308
    assert redirect.value.headers["Location"] == f"https://127.0.0.1:{stack.https_port}/"
    status, headers, _ = get(stack, "/")
    assert status == 200 and headers["Set-Cookie"].startswith("__Host-session=") and "Secure" in headers["Set-Cookie"]
    assert "Strict-Transport-Security" in headers

    # Static files come from nginx, kept a year (their URLs change with their content).
    status, headers, _ = get(stack, "/static/style.css")
    assert status == 200 and headers["Server"] == "nginx"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["X-Content-Type-Options"] == "nosniff" and "Strict-Transport-Security" in headers

    # Metrics: not from outside; each instance serves its own.
    assert get(stack, "/metrics")[0] == 404
    status, _, text = get(stack, "/metrics", direct=stack.servers[0].url)
    assert status == 200 and "cbt_http_responses_total" in text


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def healthz_count(stack) -> float:
    _, _, text = get(stack, "/metrics", direct=stack.servers[0].url)
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "cbt_http_responses_total" and sample.labels["endpoint"] == "operations.healthz")


def metrics_add_up_over_workers_and_outlive_a_killed_one(stack):
    host = stack.servers[0]
    before = healthz_count(stack)
    for _ in range(40):  # new connections: the kernel hands them to either worker
        assert get(stack, "/healthz", direct=host.url)[0] == 200
    assert healthz_count(stack) == 40 + before
    os.kill(host.workers()[0], signal.SIGKILL)
    assert wait_for(lambda: len(host.workers()) == 2)
    assert get(stack, "/healthz", direct=host.url)[0] == 200
    assert healthz_count(stack) == 41 + before


def slow_clients_hold_nginx_connections_not_the_app(stack):
    # Two instances of 2 workers x 2 threads: 8 threads in all, and 100 connections sending a byte at a time.
    with SlowClients(stack.front, 100, context=stack.nginx.ssl_context()) as attack:
        assert attack.opened == 100
        statuses = [get(stack, "/api/sitting/clock", timeout=5)[0] for _ in range(20)]
    assert statuses == [401] * 20  # answered (no one is signed in), none waited out


def with_no_instance_answering_nginx_says_503_in_json_with_the_request_id(stack):
    for server in stack.servers:
        server.stop()
    status, headers, body = get(stack, "/api/sitting")
    assert status == 503 and headers["Retry-After"] == "1"
    answer = json.loads(body)
    assert answer["status"] == 503 and answer["request_id"] == headers["X-Request-ID"]
    assert "try again" in answer["error"]


def test_the_production_site_nginx_accepts(tmp_path):
    """The recipe's site (docs/deployment.md) as an operator renders it: nginx -t takes it."""
    import subprocess

    from delivery.deploy import render_main, render_site, self_signed_certificate

    certificate, key = self_signed_certificate(tmp_path / "tls", ("cbt.example.jp",))
    site = render_site(upstreams=["10.0.0.21:8001", "10.0.0.22:8001"], certificate=certificate, key=key,
                       server_name="cbt.example.jp", access_log=str(tmp_path / "cbt.json"))
    assert "return 308 https://$host$request_uri;" in site and "@@" not in site
    assert "server 10.0.0.22:8001 max_fails=1 fail_timeout=5s;" in site
    for sub in ("conf", "logs", "temp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "conf" / "cbt-site.conf").write_text(site)
    (tmp_path / "conf" / "nginx.conf").write_text(render_main(prefix=tmp_path))
    checked = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "conf" / "nginx.conf"),
                              "-e", str(tmp_path / "logs" / "error.log")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
