"""Plots of design studies and form reviews, rendered on the server to SVG (matplotlib, without pyplot).

Same conventions as :mod:`itembank.plots` (a figure of its own per plot, a title on
every figure; the pages give the numbers as a table beside each plot).
"""
from __future__ import annotations

import numpy as np

from itembank.plots import svg_figure

COLOURS = {"loft": "#0a5bb0", "forms": "#8a5a00"}


def csem_svg(results: dict, scope: str = "total", cut_scale: float | None = None) -> str:
    """Conditional standard error (scale units) along the scale, one curve per design."""
    with svg_figure((6.0, 3.4)) as chart:
        axes = chart.axes
        for design, report in results.items():
            axes.plot(report["grid_scale"], report["csem"][scope], color=COLOURS.get(design), lw=2, label=design)
        if cut_scale is not None:
            axes.axvline(cut_scale, color="#1b1f24", lw=1, ls="--", label=f"cut {cut_scale:.0f}")
        axes.set_xlabel("scale score")
        axes.set_ylabel("CSEM (scale points)")
        axes.set_title(f"Conditional standard error: {scope}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, frameon=False)
    return chart.svg


def exposure_svg(results: dict) -> str:
    """Item exposure rates, highest first, with the target."""
    with svg_figure((6.0, 3.4)) as chart:
        axes = chart.axes
        target = None
        for design, report in results.items():
            rates = report["exposure"]["sorted"]
            axes.plot(np.arange(1, len(rates) + 1), rates, color=COLOURS.get(design), lw=2, label=design)
            target = report["exposure"]["target"]
        if target is not None:
            axes.axhline(target, color="#a3221a", lw=1, ls="--", label=f"target {target:.2f}")
        axes.set_xlabel("items, most exposed first")
        axes.set_ylabel("share of sittings")
        axes.set_title("Item exposure")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, frameon=False)
    return chart.svg


def information_svg(results: dict) -> str:
    """Each design's spread of information at every cut point, relative to the target (quantiles)."""
    names = list(next(iter(results.values()))["information"])
    with svg_figure((6.4, 3.4)) as chart:
        axes = chart.axes
        width = 0.8 / max(len(results), 1)
        for d, (design, report) in enumerate(results.items()):
            data = [np.array(report["information"][n]["values"]) / report["information"][n]["target"] for n in names]
            positions = np.arange(len(names)) + (d - (len(results) - 1) / 2) * width
            parts = axes.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, whis=(0, 100))
            for box in parts["boxes"]:
                box.set_facecolor(COLOURS.get(design, "#777777"))
                box.set_alpha(0.6)
            axes.plot([], [], color=COLOURS.get(design), lw=6, alpha=0.6, label=design)
        tolerance = next(iter(results.values()))["tolerance"]
        for level in (1 - tolerance, 1 + tolerance):
            axes.axhline(level, color="#a3221a", lw=1, ls="--")
        axes.set_xticks(np.arange(len(names)), names, fontsize=8)
        axes.set_ylabel("information / target")
        axes.set_title(f"Information at the cut points (tolerance ±{tolerance:.0%})")
        axes.legend(fontsize=8, frameon=False)
    return chart.svg
