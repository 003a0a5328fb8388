"""Plots for the calibration review screens, rendered on the server to SVG (matplotlib, without pyplot).

Each function returns an SVG document as text. The figures carry a <title> and
the page that shows them gives a text alternative, since a plot alone says
nothing to a screen reader.
"""
from __future__ import annotations

import contextlib
import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure

import engine

INK, ACCENT, OLD, OBSERVED = "#1b1f24", "#0a5bb0", "#8a5a00", "#a3221a"
# Read by every new Figure; set once, when this module is first imported, and never changed after.
matplotlib.rcParams.update({"svg.hashsalt": "cbt", "font.size": 10, "svg.fonttype": "none"})


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


class SvgFigure:
    """One figure's axes; ``svg`` holds the document once the ``with`` block ends."""

    def __init__(self, figure: Figure, axes):
        self.figure, self.axes, self.svg = figure, axes, ""


@contextlib.contextmanager
def svg_figure(figsize: tuple[float, float] = (6.4, 3.2)):
    """Draw on ``.axes`` inside the block; read ``.svg`` after it. Other packages' charts use this too.

    A figure of its own (matplotlib's object API, not pyplot's global figure manager): threads
    draw at the same time without a lock, and a figure whose drawing fails is simply dropped.
    """
    figure = Figure(figsize=figsize)
    drawing = SvgFigure(figure, figure.subplots())
    yield drawing
    drawing.svg = _svg(figure)


def _curve(a: float, b: float, c: float, theta: np.ndarray) -> np.ndarray:
    return engine.probability(theta, engine.ItemParameters([a], [b], [c]))[:, 0]


def icc_svg(title: str, parameters: tuple[float, float, float] | None, observed: dict | None = None,
            previous: tuple[float, float, float] | None = None, previous_label: str = "bank parameters") -> str:
    """The item characteristic curve, the observed proportions correct by ability group over it,
    and (dashed) the curve of the previous parameters."""
    theta = np.linspace(-4, 4, 161)
    with svg_figure((5.2, 3.4)) as chart:
        axes = chart.axes
        if previous is not None and None not in previous:
            axes.plot(theta, _curve(*previous, theta), "--", color=OLD, lw=1.6,
                      label=f"{previous_label}: a={previous[0]:.2f} b={previous[1]:.2f} c={previous[2]:.2f}")
        if parameters is not None and None not in parameters:
            axes.plot(theta, _curve(*parameters, theta), color=ACCENT, lw=2.2,
                      label=f"estimate: a={parameters[0]:.2f} b={parameters[1]:.2f} c={parameters[2]:.2f}")
        if observed and observed.get("theta"):
            sizes = np.asarray(observed["n"], dtype=float)
            axes.scatter(observed["theta"], observed["observed"], s=18 + 40 * sizes / sizes.max(), color=OBSERVED,
                         zorder=3, label="observed proportion correct (ability groups)")
        axes.set_xlim(-4, 4)
        axes.set_ylim(0, 1)
        axes.set_xlabel("ability θ (operational scale)")
        axes.set_ylabel("P(correct)")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8, frameon=False)
    return chart.svg


def drift_svg(title: str, shifts: list[tuple[str, float, bool]], threshold: float) -> str:
    """Each operational item's ICC difference (RMSD) in a run, flagged ones in red, with the threshold."""
    with svg_figure((6.4, 3.2)) as chart:
        axes = chart.axes
        values = np.array([s[1] for s in shifts], dtype=float)
        colours = [OBSERVED if s[2] else ACCENT for s in shifts]
        axes.bar(np.arange(len(values)), values, color=colours, width=0.9)
        axes.axhline(threshold, color=INK, lw=1, ls="--", label=f"threshold {threshold}")
        axes.set_xlabel(f"operational items ({len(values)}), in code order")
        axes.set_ylabel("ICC RMSD")
        axes.set_title(title)
        axes.set_xticks([])
        axes.legend(loc="upper right", fontsize=8, frameon=False)
    return chart.svg
