"""The 47 prefectures in the postal order (JIS X 0401 codes 01-47, 北海道 ... 沖縄県), with
their English names and the region of the eight by which the statistics group centres.

Centre lists follow this order (the order of Japanese address forms and postal codes),
not the alphabet: a centre's ``prefecture`` is written in Japanese (``東京都``); rows
written before in English (``Tokyo``) are recognised too.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prefecture:
    code: str  # JIS X 0401, "01" to "47"
    ja: str
    en: str
    region: str  # one of centers.models.REGIONS


_TABLE = """\
01 北海道 Hokkaido Hokkaido
02 青森県 Aomori Tohoku
03 岩手県 Iwate Tohoku
04 宮城県 Miyagi Tohoku
05 秋田県 Akita Tohoku
06 山形県 Yamagata Tohoku
07 福島県 Fukushima Tohoku
08 茨城県 Ibaraki Kanto
09 栃木県 Tochigi Kanto
10 群馬県 Gunma Kanto
11 埼玉県 Saitama Kanto
12 千葉県 Chiba Kanto
13 東京都 Tokyo Kanto
14 神奈川県 Kanagawa Kanto
15 新潟県 Niigata Chubu
16 富山県 Toyama Chubu
17 石川県 Ishikawa Chubu
18 福井県 Fukui Chubu
19 山梨県 Yamanashi Chubu
20 長野県 Nagano Chubu
21 岐阜県 Gifu Chubu
22 静岡県 Shizuoka Chubu
23 愛知県 Aichi Chubu
24 三重県 Mie Kinki
25 滋賀県 Shiga Kinki
26 京都府 Kyoto Kinki
27 大阪府 Osaka Kinki
28 兵庫県 Hyogo Kinki
29 奈良県 Nara Kinki
30 和歌山県 Wakayama Kinki
31 鳥取県 Tottori Chugoku
32 島根県 Shimane Chugoku
33 岡山県 Okayama Chugoku
34 広島県 Hiroshima Chugoku
35 山口県 Yamaguchi Chugoku
36 徳島県 Tokushima Shikoku
37 香川県 Kagawa Shikoku
38 愛媛県 Ehime Shikoku
39 高知県 Kochi Shikoku
40 福岡県 Fukuoka Kyushu
41 佐賀県 Saga Kyushu
42 長崎県 Nagasaki Kyushu
43 熊本県 Kumamoto Kyushu
44 大分県 Oita Kyushu
45 宮崎県 Miyazaki Kyushu
46 鹿児島県 Kagoshima Kyushu
47 沖縄県 Okinawa Kyushu
"""

PREFECTURES: tuple[Prefecture, ...] = tuple(Prefecture(*line.split()) for line in _TABLE.splitlines())

_BY_NAME: dict[str, Prefecture] = {}
for _p in PREFECTURES:
    # 東京都, 東京, Tokyo, tokyo: the names a row may have been written with.
    short = _p.ja if _p.ja == "北海道" else _p.ja[:-1]
    for _name in (_p.ja, short, _p.en, _p.en.lower()):
        _BY_NAME[_name] = _p
del _p, _name, short


def prefecture(name: str | None) -> Prefecture | None:
    """The prefecture a centre's ``prefecture`` names (in Japanese or English), or None."""
    return _BY_NAME.get((name or "").strip()) if name else None


def postal_order(name: str | None) -> int:
    """The prefecture's place in the postal order, 1 (北海道) to 47 (沖縄県); 99 for a name it
    does not know (such centres come last)."""
    found = prefecture(name)
    return int(found.code) if found else 99


def prefecture_name(name: str | None, language: str) -> str:
    """The prefecture's name in ``language`` ("ja": 東京都, else Tokyo); an unknown name as it is."""
    found = prefecture(name)
    if found is None:
        return name or ""
    return found.ja if language == "ja" else found.en
