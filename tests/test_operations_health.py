"""/healthz and /readyz, as a load balancer asks them, with real faults: the database out of
reach (tests.test_faults_start's faults, on SQLite and PostgreSQL) and keys that cannot be read."""
from __future__ import annotations

import pytest

from tests.test_faults_start import Faults


@pytest.fixture
def faults(engine, tmp_path, clock):
    faults = Faults(engine, tmp_path, clock)
    yield faults
    faults.close()


def test_a_ready_instance_says_so_with_each_check(client):
    alive = client.get("/healthz")
    assert alive.status_code == 200 and alive.get_json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"status": "ready", "checks": {
        "database": "ok", "content_keys": "ok", "audit_key": "ok", "certificate_key": "ok"}}
    assert ready.headers["Cache-Control"] == "no-store"


def test_without_its_database_an_instance_is_alive_but_not_ready_until_the_database_is_back(faults):
    client = faults.app.test_client()
    with faults("unreachable"):
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        body = response.get_json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"].startswith("failed: ")
        assert "Traceback" not in response.get_data(as_text=True)
    assert client.get("/readyz").status_code == 200


def test_an_unreadable_content_key_file_or_audit_key_makes_the_instance_not_ready(client, monkeypatch, tmp_path):
    monkeypatch.setenv("CBT_CONTENT_KEY_FILE", str(tmp_path / "gone" / "content-keys.json"))
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok" and checks["content_keys"].startswith("failed: ")
    assert "content-keys.json" in checks["content_keys"]
    monkeypatch.delenv("CBT_CONTENT_KEY_FILE")
    secret = "not-hex-" * 8
    monkeypatch.setenv("CBT_AUDIT_KEY", secret)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["content_keys"] == "ok" and checks["audit_key"].startswith("failed: ")
    assert secret not in response.get_data(as_text=True)  # says what is wrong, never the key
