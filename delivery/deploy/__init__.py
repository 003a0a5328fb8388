"""The deployment recipe's files (docs/deployment.md): nginx's site, the local stack's nginx
main file, systemd units; and the two things made from them here: a rendered nginx site
and a self-signed certificate for local runs.

``python -m delivery.deploy nginx --upstream 10.0.0.11:8000 --upstream 10.0.0.12:8000
--certificate /etc/ssl/cbt.pem --key /etc/ssl/private/cbt.key > /etc/nginx/conf.d/cbt.conf``
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC_ROOT = HERE.parent / "web" / "static"
PLACEHOLDER = re.compile(r"@@[A-Z_]+@@")
REDIRECT = "if ($scheme = http) { return 308 https://$host:@@HTTPS_PORT@@$request_uri; }"
SERVE_PLAIN = "# (served as is: a local load run)"


def _fill(template: str, values: dict[str, str]) -> str:
    text = template
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", str(value))
    left = PLACEHOLDER.findall(text)
    if left:
        raise ValueError(f"placeholders without a value: {', '.join(sorted(set(left)))}")
    return text


def render_site(*, upstreams: list[str], certificate: Path, key: Path, https_port: int = 443, http_port: int = 80,
                server_name: str = "_", static_root: Path = STATIC_ROOT, access_log: str = "/var/log/nginx/cbt.json",
                redirect_http: bool = True) -> str:
    """The nginx site (http context) in front of ``upstreams`` (host:port of each gunicorn instance)."""
    if not upstreams:
        raise ValueError("at least one upstream instance")
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
    policy = REDIRECT if redirect_http else SERVE_PLAIN
    if https_port == 443:
        policy = policy.replace(":@@HTTPS_PORT@@", "")
    return _fill((HERE / "nginx-site.conf.template").read_text(), {
        "UPSTREAM_SERVERS": servers, "HTTP_POLICY": policy, "HTTPS_PORT": https_port, "HTTP_PORT": http_port,
        "SERVER_NAME": server_name, "TLS_CERTIFICATE": certificate, "TLS_KEY": key,
        "STATIC_ROOT": str(static_root).rstrip("/"), "ACCESS_LOG": access_log})


def render_main(*, prefix: Path, worker_processes: str = "auto", mime_types: Path = Path("/etc/nginx/mime.types")) -> str:
    """The local stack's nginx main file: everything under ``prefix``, the site in ``prefix/conf``."""
    return _fill((HERE / "nginx-main.conf.template").read_text(), {
        "PREFIX": prefix, "WORKER_PROCESSES": worker_processes, "MIME_TYPES": mime_types})


def self_signed_certificate(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
                            days: int = 30) -> tuple[Path, Path]:
    """A P-256 key and a self-signed certificate for ``names`` (for local runs only), in
    ``directory``; kept if they are there and valid for another day. Returns (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    certificate_path, key_path = directory / "cert.pem", directory / "key.pem"
    now = dt.datetime.now(dt.timezone.utc)
    if certificate_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        if existing.not_valid_after_utc > now + dt.timedelta(days=1):
            return certificate_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cbt local stack")])
    alternatives = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m delivery.deploy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    nginx = commands.add_parser("nginx", help="print the nginx site for these instances")
    nginx.add_argument("--upstream", action="append", required=True, help="host:port of a gunicorn instance")
    nginx.add_argument("--certificate", type=Path, required=True)
    nginx.add_argument("--key", type=Path, required=True)
    nginx.add_argument("--server-name", default="_")
    nginx.add_argument("--https-port", type=int, default=443)
    nginx.add_argument("--http-port", type=int, default=80)
    nginx.add_argument("--static-root", type=Path, default=STATIC_ROOT)
    nginx.add_argument("--access-log", default="/var/log/nginx/cbt.json")
    certificate = commands.add_parser("certificate", help="make a self-signed certificate (local runs only)")
    certificate.add_argument("directory", type=Path)
    certificate.add_argument("--name", action="append", help="a host name or address (repeat)")
    args = parser.parse_args(argv)
    if args.command == "nginx":
        sys.stdout.write(render_site(upstreams=args.upstream, certificate=args.certificate, key=args.key,
                                     https_port=args.https_port, http_port=args.http_port,
                                     server_name=args.server_name, static_root=args.static_root,
                                     access_log=args.access_log))
    else:
        paths = self_signed_certificate(args.directory, tuple(args.name or ("localhost", "127.0.0.1", "::1")))
        print("\n".join(map(str, paths)))
    return 0
