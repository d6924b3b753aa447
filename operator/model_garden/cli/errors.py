"""Exit codes scripts can rely on, and the one-line errors that carry them.

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success (``train --wait``: the job succeeded)
1     the operation ran and failed (a job that failed, a deletion that is blocked)
2     bad input: an unknown flag or value, an invalid manifest, a missing file
3     not found: no such job or version
4     the cluster cannot be reached (or refused our credentials)
5     already exists: a job or version of that name
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import click

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4
EXIT_EXISTS = 5
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """``Error: <one line>`` on stderr and the exit code of its kind."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the cause said


class InvalidInput(CliError):
    exit_code = EXIT_USAGE


class NotFound(CliError):
    exit_code = EXIT_NOT_FOUND


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE


class Exists(CliError):
    exit_code = EXIT_EXISTS
