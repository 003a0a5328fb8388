"""Building blocks for the item bank's tests: packages from tests/data, a private bank."""
from __future__ import annotations

import io
import pathlib
import zipfile

DATA = pathlib.Path(__file__).with_name("data")


def zip_directory(directory: pathlib.Path, extra: dict[str, bytes] | None = None) -> bytes:
    """The files under ``directory`` as a zip (a QTI content package), with ``extra`` members
    added or put in place of the files of the same name."""
    extra = dict(extra or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(directory.rglob("*")):
            name = path.relative_to(directory).as_posix()
            if path.is_file():
                package.writestr(name, extra.pop(name) if name in extra else path.read_bytes())
        for name, data in extra.items():
            package.writestr(name, data)
    return buffer.getvalue()


def qti_package(name: str, **extra: bytes) -> bytes:
    return zip_directory(DATA / "qti" / name, {k.replace("__", "/"): v for k, v in extra.items()})
