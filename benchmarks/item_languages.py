"""What items in two languages cost: decrypting them and choosing the candidate's language.

Prints, in one process, for 100 sample items (Japanese with an English version):
  1. unpack() of the 100 stored versions with both languages against the same items in
     one language (the baseline: content as stored before language versions);
  2. ItemContent.shown_in("en", "ja") for the 100 (what GET /api/sitting does per item,
     after the decrypted content is cached), against the same call on one-language items.

Run: .venv/bin/python benchmarks/item_languages.py [--repeat N]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from itembank.content import pack, unpack  # noqa: E402
from itembank.keyring import Keyring  # noqa: E402
from itembank.program import load_program  # noqa: E402
from itembank.sample import sample_content, sample_items, sample_translations  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    repeat = parser.parse_args().repeat
    keyring = Keyring(active="0123abcd", keys={"0123abcd": os.urandom(32)}, source="benchmark")
    program, translations = load_program(), sample_translations()
    both = [sample_content(raw, translations, program.languages) for raw in sample_items()[:100]]
    single = [dataclasses.replace(content, translations=()) for content in both]
    stored_both = [pack(content, keyring) for content in both]
    stored_single = [pack(content, keyring) for content in single]

    def per_call(call) -> float:
        return min(timeit.repeat(call, number=1, repeat=repeat)) * 1e3

    unpack_single = per_call(lambda: [unpack(s, keyring) for s in stored_single])
    unpack_both = per_call(lambda: [unpack(s, keyring) for s in stored_both])
    shown_single = per_call(lambda: [c.shown_in("en", "ja") for c in single])
    shown_both = per_call(lambda: [c.shown_in("en", "ja") for c in both])
    print(f"python {platform.python_version()} on {platform.machine()}, best of {repeat}, 100 items")
    print(f"unpack, one language:            {unpack_single:8.2f} ms")
    print(f"unpack, Japanese + English:      {unpack_both:8.2f} ms  (x{unpack_both / unpack_single:.2f})")
    print(f"shown_in('en'), one language:    {shown_single:8.3f} ms")
    print(f"shown_in('en'), two languages:   {shown_both:8.3f} ms")


if __name__ == "__main__":
    main()
