"""Slow clients: connections that send their request a byte at a time and hold on.

Half send headers that never end (slowloris), half send complete headers then a body of
100 kB one byte at a time; each sends a byte every ``interval`` seconds and connects again
when the server drops it. Against nginx (``loadtests.faults`` runs them in its slow-client
scenario, measuring the candidates' requests meanwhile) they hold nginx connections only;
against gunicorn directly each one holds a worker thread for as long as it lasts.

``python -m loadtests.slowclients https://127.0.0.1:8443 --connections 200 --seconds 30 [--cafile cert.pem]``
"""
from __future__ import annotations

import argparse
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class SlowClients:
    url: str
    connections: int = 200
    interval: float = 0.5
    context: ssl.SSLContext | None = None
    opened: int = 0
    dropped: int = 0  # connections the server closed (it timed them out): each one opened again
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        parts = urllib.parse.urlsplit(self.url)
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=10)
        if self.tls:
            return (self.context or ssl.create_default_context()).wrap_socket(raw, server_hostname=self.host)
        return raw

    def _request_start(self, body: bool) -> bytes:
        if body:
            return (f"PUT /api/sitting/answers/1 HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n{").encode()
        return f"GET /api/sitting/clock HTTP/1.1\r\nHost: {self.host}\r\n".encode()

    def _hold(self, body: bool) -> None:
        while not self._stop.is_set():
            try:
                connection = self._connect()
            except OSError:
                self._stop.wait(self.interval)
                continue
            with self._lock:
                self.opened += 1
            try:
                start = self._request_start(body)
                # A first few bytes, then one at a time.
                connection.sendall(start[:16])
                sent = 16
                while not self._stop.wait(self.interval):
                    if sent < len(start):
                        connection.sendall(start[sent:sent + 1])
                        sent += 1
                    else:
                        connection.sendall(b" " if body else b"X-Slow: 1\r\n"[:1])
            except OSError:
                with self._lock:
                    self.dropped += 1
            finally:
                connection.close()

    def start(self) -> None:
        for n in range(self.connections):
            thread = threading.Thread(target=self._hold, args=(n % 2 == 1,), daemon=True)
            thread.start()
            self._threads.append(thread)
        # Let them connect before anything is measured.
        deadline = time.monotonic() + 10
        while self.opened < self.connections and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SlowClients:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--cafile")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    with SlowClients(args.url, args.connections, args.interval, context) as attack:
        time.sleep(args.seconds)
    print(f"{attack.opened} connections opened, {attack.dropped} dropped by the server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
