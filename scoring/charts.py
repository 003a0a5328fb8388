"""Charts of the operation's statistics, rendered on the server to SVG.

The words on a chart come from the caller (``labels``), so the web edge draws them in the
reader's language; the defaults are English, for the CLI and for tests.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib import font_manager

from itembank.plots import ACCENT, INK, OBSERVED, svg_figure
from scoring.statistics import Breakdown

# Japanese labels need a font with kana and kanji to be measured (the SVG keeps its text as text,
# so the browser draws it); set once at import, like itembank.plots' other settings.
_CJK = "Noto Sans CJK JP"
if any(font.name == _CJK for font in font_manager.fontManager.ttflist):
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", _CJK]

LABELS = {
    "sittings": "sittings", "pass rate (%)": "pass rate (%)", "total score": "total score",
    "pass mark {cut}": "pass mark {cut}", "Sittings and pass rate by month": "Sittings and pass rate by month",
    "Distribution of total scores": "Distribution of total scores",
    "Pass rate by candidate group": "Pass rate by candidate group",
}


def _words(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS, **(labels or {})}


def pass_rate_by_month_svg(months: Breakdown, labels: Mapping[str, str] | None = None) -> str:
    words = _words(labels)
    with svg_figure((6.4, 3.0)) as chart:
        x = np.arange(len(months.keys))
        chart.axes.bar(x, months.sittings, color="#c4cad3", label=words["sittings"])
        chart.axes.set_ylabel(words["sittings"])
        chart.axes.set_xticks(x, months.keys, rotation=45, ha="right", fontsize=8)
        rate = chart.axes.twinx()
        rate.plot(x, 100 * months.pass_rate, color=ACCENT, marker="o", lw=2, label=words["pass rate (%)"])
        rate.set_ylim(0, 100)
        rate.set_ylabel(words["pass rate (%)"])
        chart.axes.set_title(words["Sittings and pass rate by month"])
    return chart.svg


def score_distribution_svg(edges: np.ndarray, counts: np.ndarray, cut: int,
                           labels: Mapping[str, str] | None = None) -> str:
    words = _words(labels)
    with svg_figure((6.4, 3.0)) as chart:
        chart.axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=ACCENT, edgecolor="white")
        chart.axes.axvline(cut, color=OBSERVED, lw=2, ls="--", label=words["pass mark {cut}"].format(cut=cut))
        chart.axes.set_xlim(edges[0], edges[-1])
        chart.axes.set_xlabel(words["total score"])
        chart.axes.set_ylabel(words["sittings"])
        chart.axes.legend(frameon=False, fontsize=8)
        chart.axes.set_title(words["Distribution of total scores"])
    return chart.svg


def pass_rate_by_group_svg(groups: Breakdown, labels: Mapping[str, str] | None = None) -> str:
    words = _words(labels)
    with svg_figure((6.4, 2.8)) as chart:
        y = np.arange(len(groups.keys))
        chart.axes.barh(y, 100 * groups.pass_rate, color=INK)
        for row, (rate, n) in enumerate(zip(groups.pass_rate, groups.sittings)):
            chart.axes.text(100 * rate + 1, row, f"{100 * rate:.1f}% (n={n})", va="center", fontsize=8)
        chart.axes.set_yticks(y, groups.keys)
        chart.axes.set_xlim(0, 110)
        chart.axes.set_xlabel(words["pass rate (%)"])
        chart.axes.set_title(words["Pass rate by candidate group"])
    return chart.svg
