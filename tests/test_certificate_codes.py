"""A certificate has one code: a second spelling of it (other spare bits) is refused (issue 13)."""
from __future__ import annotations

import base64
import secrets

import pytest

from scoring.certificates import CertificateError, format_code, parse_code

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@pytest.mark.parametrize("size", [10, 16, 21, 33])
def test_a_code_as_issued_parses_back_and_any_other_spelling_is_refused(size):
    raw = secrets.token_bytes(size)
    code = format_code(raw)
    assert parse_code(code) == raw and parse_code(code.lower().replace("-", " ")) == raw
    spare = (-size * 8) % 5  # bits of the last character that carry nothing
    if not spare:
        return
    last = code[-1]
    for flipped in range(1, 2 ** spare):
        other = ALPHABET[ALPHABET.index(last) ^ flipped]
        twin = code[:-1] + other
        assert base64.b32decode(twin.replace("-", "") + "=" * (-len(twin.replace("-", "")) % 8)) == raw
        with pytest.raises(CertificateError, match="not a certificate code as issued"):
            parse_code(twin)
