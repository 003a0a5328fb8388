"""The ``cbt`` command: one group, a module per area of work."""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """CBT exam delivery and scoring engine."""


def _register() -> None:
    from delivery.cli import assembly, bank, centres, certificates, operations, psychometrics, scoring, security

    for module in (operations, psychometrics, bank, centres, certificates, scoring, assembly, security):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
