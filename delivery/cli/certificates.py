"""Score certificates: key rotation, public keys, offline verification."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from persistence import create_database_engine, session_factory
from scoring import certificates


@click.group("certificates")
def certificates_group() -> None:
    """Certificate signing keys."""


@certificates_group.command("rotate-key")
@click.option("--by", "operator", default="operations", show_default=True, help="Who does it, for the audit trail.")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
def rotate_key(operator: str, reason: str) -> None:
    """Start signing with a new key; earlier certificates stay verifiable."""
    with session_factory(create_database_engine())() as session:
        key = certificates.rotate_signing_key(session, certificates.key_directory(), actor=operator,
                                              actor_role="operations", reason=reason,
                                              now=dt.datetime.now(dt.timezone.utc))
    click.echo(f"certificates are now signed with key {key.id}; its private key is in {certificates.key_directory()}")


@certificates_group.command("export-keys")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_keys(out: Path) -> None:
    """Write every public key to OUT (JSON), for verifying without the database."""
    with session_factory(create_database_engine())() as session:
        keys = certificates.public_keys(session)
    out.write_text(json.dumps({str(k): v for k, v in keys.items()}, indent=2))
    click.echo(f"{len(keys)} public key(s) written to {out}")


@click.command("verify")
@click.argument("code")
@click.option("--name", help="The holder's name, to check it as well.")
@click.option("--public-keys", "keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public keys exported with `cbt certificates export-keys` (default: read the database).")
def verify(code: str, name: str | None, keys_file: Path | None) -> None:
    """Check a score certificate CODE; exit 1 if it is not genuine."""
    if keys_file is not None:
        refusal = click.ClickException(f"{keys_file} is not a public key file from `cbt certificates export-keys`")
        try:
            exported = json.loads(keys_file.read_text())
        except (ValueError, UnicodeDecodeError):
            raise refusal from None
        if not isinstance(exported, dict) or not all(k.isdigit() and isinstance(v, str) for k, v in exported.items()):
            raise refusal
        keys = {int(k): v for k, v in exported.items()}
    else:
        with session_factory(create_database_engine())() as session:
            keys = certificates.public_keys(session)
    result = certificates.verify(code, keys, name)
    if not result.valid:
        click.echo(f"NOT VALID: {result.reason}", err=True)
        raise SystemExit(1)
    s = result.statement
    fields = " ".join(str(score) for score in s.field_scores)
    click.echo(f"genuine: certificate {s.number}, sat {s.sat_on.isoformat()}, total {s.total}, fields {fields}, "
               f"{'pass' if s.passed else 'not passed'} (key {s.key_id})")
    if result.name_matches is not None:
        click.echo("name: matches" if result.name_matches else "name: DOES NOT MATCH")
        if not result.name_matches:
            raise SystemExit(1)


COMMANDS = [certificates_group, verify]
