"""The `cbt` command run in a test, on a database and a var/ folder of the test's own."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from click.testing import CliRunner

from delivery.cli import main
from itembank.keyring import use_keyring


@contextmanager
def own_cbt(tmp_path, monkeypatch, *setup: list[str]) -> Iterator[Callable[..., str]]:
    """``run(*args, code=0)`` runs ``cbt args`` against a fresh SQLite file in ``tmp_path`` (keys made
    in its own var/, acting as "psychometrician"), checks the exit code and returns the output. The
    ``setup`` commands (e.g. ``["db", "upgrade"]``) run first; the process keyring is forgotten
    before and after, so no other test's keys are seen."""
    monkeypatch.setenv("CBT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("CBT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CBT_CONTENT_KEYS", raising=False)
    monkeypatch.delenv("CBT_CONTENT_KEY_FILE", raising=False)
    monkeypatch.setenv("CBT_ACTOR", "psychometrician")
    use_keyring(None)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args))
        assert result.exit_code == code, result.output
        return result.output

    try:
        for command in setup:
            run(*command)
        yield run
    finally:
        use_keyring(None)
