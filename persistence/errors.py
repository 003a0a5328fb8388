"""The one family of domain errors.

Every service raises one of these kinds when it cannot carry out a request as
asked; the message is the sentence the user reads. The edges map the kind, never
the message: the web layer to an HTTP status (``delivery.web.errors``), the CLI to
an exit code (``delivery.cli``). Programming errors stay what they are
(``TypeError``, ``KeyError``...) and are never caught as domain errors.

=================  ==============================================  ======
kind               when                                            HTTP
=================  ==============================================  ======
``InvalidInput``   the request itself is malformed or out of         422
                   range (a field, a file, a row)
``NotFound``       what it names does not exist (for this actor)     404
``Refused``        this actor may not do it (another centre,         403
                   four-eyes review, a closed account);
                   ``NotSignedIn``: no one is signed in              401
``Conflict``       the state does not allow it now (a sitting        409
                   already finished, the slot full, the deadline
                   passed)
``Unavailable``    a part it needs is out of reach (keys, storage,   503
                   a solver); trying later may work
=================  ==============================================  ======

The CLI prints the message and exits with status 1 for every kind (2 stays
click's, for a command line it cannot parse).
"""
from __future__ import annotations


class DomainError(Exception):
    """A request a service cannot carry out as given; ``str(error)`` is the user's message.

    The message is written as a template with named places, and the values as keywords:
    ``Conflict("The slot {slot} is full.", slot=code)``. The template is a gettext message
    (``delivery/web/babel.cfg`` extracts every literal given to these classes), so the web
    edge can show it in the reader's language: translate the template, then fill it in
    (``delivery.web.i18n.user_message``). An f-string would be English only.

    ``field`` names the input at fault where there is one (a form field, a CSV
    column, a JSON path), so that a form can show the message beside it.
    """

    def __init__(self, message: str, *, field: str | None = None, **params: object):
        self.template = message
        self.params = params
        self.message = message.format(**params) if params else message
        super().__init__(self.message)
        self.field = field


class InvalidInput(DomainError):
    """The input is malformed or out of range."""


class NotFound(DomainError):
    """What the request names does not exist, or is not visible to the actor."""


class Refused(DomainError):
    """The actor may not do this."""


class NotSignedIn(Refused):
    """The request needs a signed-in user (or seat) and has none, or its sign-in has ended."""


class Conflict(DomainError):
    """The current state does not allow this (now)."""


class Unavailable(DomainError):
    """A part the request needs is out of reach; the request may succeed later."""

    def __init__(self, message: str, *, field: str | None = None, retry_after: int | None = None,
                 **params: object):
        super().__init__(message, field=field, **params)
        self.retry_after = retry_after



KINDS: tuple[type[DomainError], ...] = (InvalidInput, NotFound, Refused, Conflict, Unavailable)


def status_for(error: DomainError, table: dict[type[DomainError], int], default: int) -> int:
    """The value ``table`` gives the most specific class of ``error`` it names (an edge's
    mapping of kinds to HTTP statuses or exit codes), else ``default``."""
    for kind in type(error).__mro__:
        if kind in table:
            return table[kind]
    return default
