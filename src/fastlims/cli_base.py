"""What every command of the command line shares: the system of the environment's settings (a
bad setting is a CLI error naming it) and a password read from standard input."""

from __future__ import annotations

import sys
from typing import Any

import click

from fastlims.bootstrap import ConfigurationError, Role, System, build_from_environment


def system(role: Role = "cli", **overrides: Any) -> System:
    """The system of the environment's settings; a bad setting is a CLI error naming it."""
    try:
        return build_from_environment(role=role, **overrides)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def read_password(password_stdin: bool) -> tuple[str, bool]:
    """A password from stdin, or a generated one (then the caller prints it once)."""
    from fastlims.users.security import generate_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin given but no password was read from standard input")
        return password, False
    return generate_password(), True
