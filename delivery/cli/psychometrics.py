"""Psychometric commands over the engine: calibrate, score, link (thin layers)."""
from __future__ import annotations

COMMANDS: list = []
