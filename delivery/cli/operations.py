"""Operational commands: database, sample data, demo, sweep."""
from __future__ import annotations

COMMANDS: list = []
