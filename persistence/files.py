"""Local files that hold secrets or candidates' data: readable by their owner only.

The SQLite database (and the ``-wal``/``-shm`` files SQLite makes beside it, which take the
database file's permissions), the development keys and the session secret live in the var
folder; it is made 0700 and the files 0600, whatever the process's umask.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_directory(path: Path) -> Path:
    """Make ``path`` (and missing parents) a folder only its owner can enter; returns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty, 0600, if it does not exist (its folder made private); returns it."""
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    os.close(descriptor)
    return path


def secret_key_file(path: Path) -> Path:
    """``path``, created (0600, in a private folder) with a fresh 256-bit key in hex if it does not
    exist yet; a file another process made first is kept as it is."""
    if not path.exists():
        private_directory(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path
