"""The app trusts X-Forwarded-* from its proxy only (CBT_PROXY_ADDRESSES), not from a client
that reaches it around the proxy."""
from __future__ import annotations

import logging

from delivery.web import TrustedProxies, create_app


def client_address(app, caplog, peer: str, forwarded: str) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="delivery.web.requests"):
        response = app.test_client().get("/healthz", headers={"X-Forwarded-For": forwarded,
                                                              "X-Forwarded-Proto": "https"},
                                         environ_base={"REMOTE_ADDR": peer})
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "delivery.web.requests"]
    return record.client, "Strict-Transport-Security" in response.headers


def test_forwarded_headers_are_taken_from_the_listed_proxies_only(engine, clock, caplog):
    app = create_app({"ENGINE": engine, "SECRET_KEY": "test-secret", "TESTING": True, "CLOCK": clock,
                      "TRUSTED_PROXIES": 1, "PROXY_ADDRESSES": ("10.0.0.5", "192.0.2.0/24")})
    assert client_address(app, caplog, "10.0.0.5", "198.51.100.23") == ("198.51.100.23", True)
    assert client_address(app, caplog, "192.0.2.77", "198.51.100.24") == ("198.51.100.24", True)
    # Loopback is not listed here, and a client elsewhere on the network is not a proxy.
    assert client_address(app, caplog, "127.0.0.1", "198.51.100.25") == ("127.0.0.1", False)
    assert client_address(app, caplog, "10.0.0.6", "198.51.100.26") == ("10.0.0.6", False)


def test_the_default_proxy_is_on_this_host():
    fixed = TrustedProxies(lambda environ, start: [], 1, ("127.0.0.1", "::1"))
    assert fixed.trusted("127.0.0.1") and fixed.trusted("::1")
    assert not fixed.trusted("127.0.0.2") and not fixed.trusted("") and not fixed.trusted("unix:")
