"""What long-running commands print while they work."""
from __future__ import annotations

import click


def em_progress(e_steps: int, loglik: float, change: float) -> None:
    """One line per EM step of a calibration, on stderr (so stdout stays the result)."""
    click.echo(f"EM {e_steps:4d}  log-likelihood {loglik:16.4f}  largest change {change:.2e}", err=True)
