"""The ``cbt`` command: one group, a module per area of work.

Domain errors (persistence.errors) are mapped to the exit code here, once: the
command prints the message (``Error: ...``) and exits with status 1, whatever
subcommand raised it; click's own usage errors keep status 2.
"""
from __future__ import annotations

import click

from persistence.errors import DomainError

EXIT_CODE = 1


class DomainGroup(click.Group):
    """A click group whose commands report a refused request as a message, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DomainError as error:
            refusal = click.ClickException(str(error))
            refusal.exit_code = EXIT_CODE
            raise refusal from None


@click.group(cls=DomainGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """CBT exam delivery and scoring engine."""


def _register() -> None:
    from delivery.cli import assembly, bank, centres, certificates, operations, psychometrics, scoring, seats, security

    for module in (operations, psychometrics, bank, centres, certificates, scoring, assembly, security, seats):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
