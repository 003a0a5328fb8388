"""Input as people type it, made plain before it is checked: the one place every form and
schema edge (and the services that look codes up) normalises typed text.

With a Japanese input method on, digits, letters, "@" and hyphens come out full-width
(２０００／４／１, ＡＢＣＤ－２３４５, ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｃｏｍ), the minus key gives the
long-vowel mark ー in kana mode, and spaces are ideographic (U+3000). NFKC folds the
full-width forms to ASCII; the dashes people type for a hyphen are made "-" where a
hyphen is meant (codes, dates, phone numbers). A date is understood as 2000-04-01,
2000/4/1, 2000.4.1, 2000年4月1日, or with a Japanese era (平成12年4月1日, 令和元年5月1日).
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

# What a keyboard or an input method gives for "-": the long-vowel mark (ー, ｰ folds to it),
# hyphens, dashes, the minus sign, the full-width hyphen-minus (folded by NFKC already).
_DASHES = "\u30fc\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\ufe58"
_TO_HYPHEN = str.maketrans({ch: "-" for ch in _DASHES})


def plain(text: str | None) -> str:
    """NFKC-folded text, stripped: full-width letters, digits, signs and spaces made ASCII."""
    return unicodedata.normalize("NFKC", text or "").strip()


def plain_code(text: str | None) -> str:
    """A code, a number or a date as typed: :func:`plain`, with every dash made a hyphen and
    the spaces inside dropped."""
    return "".join(plain(text).translate(_TO_HYPHEN).split())


def email(text: str | None) -> str:
    """An e-mail address as typed: folded, trimmed and lower-cased (ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｃｏｍ is
    hanako@example.com). Dashes other than "-" are kept: an address may hold any of them."""
    return plain(text).lower()


def phone(text: str | None) -> str:
    """A phone number as typed (０３－１２３４－５６７８, 03ー1234ー5678, +81 3 1234 5678):
    digits, hyphens and a leading "+", nothing else; checking its length is the caller's."""
    folded = plain_code(text).replace("(", "-").replace(")", "-")
    return re.sub(r"-{2,}", "-", folded).strip("-")


# The eras a date of birth is still written in: (name, first day). 元年 is the first year.
ERAS = (("令和", dt.date(2019, 5, 1)), ("平成", dt.date(1989, 1, 8)), ("昭和", dt.date(1926, 12, 25)),
        ("大正", dt.date(1912, 7, 30)))
_ERA_NAMES = "|".join(name for name, _ in ERAS)
_ISO_LIKE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_KANJI = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?")
_ERA = re.compile(rf"({_ERA_NAMES})(\d{{1,2}}|元)年(\d{{1,2}})月(\d{{1,2}})日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def date(text: str | None) -> dt.date | None:
    """The date typed, or None when it is not one (a 13th month, 31 April, words).

    2000-04-01, 2000/4/1, 2000.4.1, 20000401, 2000年4月1日 and 平成12年4月1日 are all 1 April
    2000, typed in full-width digits or not; a date before its era began is not one."""
    folded = plain_code(text)
    if len(folded) > 32:
        return None
    for pattern in (_ISO_LIKE, _KANJI, _COMPACT):
        found = pattern.fullmatch(folded)
        if found:
            return _day(*(int(part) for part in found.groups()))
    found = _ERA.fullmatch(folded)
    if found:
        era, year, month, day = found.groups()
        first = dict(ERAS)[era]
        written = _day(first.year + (1 if year == "元" else int(year)) - 1, int(month), int(day))
        return written if written is not None and written >= first else None
    return None


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


# ---- names in kana (フリガナ) --------------------------------------------------------------

_HIRAGANA = re.compile(r"[\u3041-\u3096]")
# Full-width katakana (ァ..ヺ), the middle dot ・ for foreign names, the long-vowel mark ー, and
# ヽヾ (iteration marks): what a reading may hold, with one space between the parts of a name.
_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fb\u30fc\u30fd\u30fe]+(?: [\u30a1-\u30fa\u30fb\u30fc\u30fd\u30fe]+)*")
_JAPANESE_SCRIPT = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")


def kana(text: str | None) -> str:
    """A reading as typed: half-width katakana made full-width (NFKC), hiragana made katakana
    (やまだ はなこ is ヤマダ ハナコ), spaces of any width made one ASCII space between parts."""
    folded = " ".join(plain(text).split())
    return _HIRAGANA.sub(lambda ch: chr(ord(ch.group()) + 0x60), folded)


def is_katakana(text: str) -> bool:
    """Whether ``text`` (as :func:`kana` gives it) is a reading in full-width katakana."""
    return bool(_KATAKANA.fullmatch(text))


def in_japanese_script(text: str) -> bool:
    """Whether a name holds kanji or kana (its reading is then needed to read it aloud)."""
    return bool(_JAPANESE_SCRIPT.search(text))
