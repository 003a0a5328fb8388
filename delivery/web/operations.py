"""What the load balancer and the monitoring ask each instance: ``/healthz``, ``/readyz``, ``/metrics``.

- ``GET /healthz``: the process answers (200, touches nothing): a balancer that gets no
  answer restarts or drops the instance.
- ``GET /readyz``: the instance can serve: its database answers and the keys it needs
  can be read now (the content keys decrypt the bank, the audit seal key, the active
  certificate signing key). 200 with each check's result, or 503 with what failed (no
  secret in it): the balancer sends no traffic to it until it is ready again.
- ``GET /metrics``: Prometheus' text format, every worker of this instance added up
  (see delivery.web.observability). nginx does not pass ``/metrics`` from outside
  (docs/deployment.md): Prometheus scrapes each instance's own port.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from delivery.web.context import resources
from delivery.web.observability import metrics

blueprint = Blueprint("operations", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="alive")


def _database() -> None:
    with resources().engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _content_keys() -> None:
    from itembank.encryption import check_content_keys
    from itembank.keyring import load_keyring

    with resources().sessions() as session:
        check_content_keys(session, load_keyring())


def _audit_key() -> None:
    from persistence.audit import audit_key

    audit_key()


def _certificate_key() -> None:
    from scoring import certificates

    with resources().sessions() as session:
        key = certificates.active_key(session)
        if key is not None:  # none yet: the first report makes one
            certificates.load_private_key(certificates.key_directory(), key)


CHECKS = {"database": _database, "content_keys": _content_keys, "audit_key": _audit_key,
          "certificate_key": _certificate_key}


@blueprint.get("/readyz")
def readyz():
    results, ready = {}, True
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # noqa: BLE001 (any failure means "not ready": say which and why)
            ready = False
            reason = " ".join(str(getattr(error, "orig", None) or error).split())[:300]
            results[name] = f"failed: {reason}"
            log.warning("not ready: %s: %s", name, reason)
            if name == "database":  # the other checks need it
                break
        else:
            results[name] = "ok"
    response = jsonify(status="ready" if ready else "not ready", checks=results)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


@blueprint.get("/metrics")
def metrics_text():
    body = metrics().exposition(current_app.config.get("METRICS_DIR"))
    return Response(body, mimetype="text/plain", headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
