"""Charts of the operation's statistics, rendered on the server to SVG."""
from __future__ import annotations

import numpy as np

from itembank.plots import ACCENT, INK, OBSERVED, svg_figure
from scoring.statistics import Breakdown


def pass_rate_by_month_svg(months: Breakdown) -> str:
    with svg_figure((6.4, 3.0)) as chart:
        x = np.arange(len(months.keys))
        chart.axes.bar(x, months.sittings, color="#c4cad3", label="sittings")
        chart.axes.set_ylabel("sittings")
        chart.axes.set_xticks(x, months.keys, rotation=45, ha="right", fontsize=8)
        rate = chart.axes.twinx()
        rate.plot(x, 100 * months.pass_rate, color=ACCENT, marker="o", lw=2, label="pass rate")
        rate.set_ylim(0, 100)
        rate.set_ylabel("pass rate (%)")
        chart.axes.set_title("Sittings and pass rate by month")
    return chart.svg


def score_distribution_svg(edges: np.ndarray, counts: np.ndarray, cut: int) -> str:
    with svg_figure((6.4, 3.0)) as chart:
        chart.axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=ACCENT, edgecolor="white")
        chart.axes.axvline(cut, color=OBSERVED, lw=2, ls="--", label=f"pass mark {cut}")
        chart.axes.set_xlim(edges[0], edges[-1])
        chart.axes.set_xlabel("total score")
        chart.axes.set_ylabel("sittings")
        chart.axes.legend(frameon=False, fontsize=8)
        chart.axes.set_title("Distribution of total scores")
    return chart.svg


def pass_rate_by_group_svg(groups: Breakdown) -> str:
    with svg_figure((6.4, 2.8)) as chart:
        y = np.arange(len(groups.keys))
        chart.axes.barh(y, 100 * groups.pass_rate, color=INK)
        for row, (rate, n) in enumerate(zip(groups.pass_rate, groups.sittings)):
            chart.axes.text(100 * rate + 1, row, f"{100 * rate:.1f}% (n={n})", va="center", fontsize=8)
        chart.axes.set_yticks(y, groups.keys)
        chart.axes.set_xlim(0, 110)
        chart.axes.set_xlabel("pass rate (%)")
        chart.axes.set_title("Pass rate by candidate group")
    return chart.svg
