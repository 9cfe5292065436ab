"""``fastlims users disable | enable | passwd | list`` and ``fastlims tokens list | revoke``.

Each takes effect at once: every page request and API call checks the user's state, the
session's generation and the token's revocation and expiry in the database.

``fastlims.cli`` adds these to its ``users`` and ``tokens`` groups (:func:`add_account_commands`)
and passes, as the click context's object, how to build the system and in
``ctx.meta[catalog.procedure_commands.PREPARE]`` how to migrate its database; this module never
imports the CLI or the composition root.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import click
from sqlalchemy.orm import Session

from fastlims.db.engine import Database
from fastlims.users import service

PREPARE = "fastlims.prepare_database"  # the same ctx.meta key as catalog.procedure_commands'
T = TypeVar("T")


class CommandSystem(Protocol):
    database: Database


def _run(action: Callable[[Session], T]) -> T:
    """``action(session)`` in one transaction on the migrated database; a UserError is a CLI error."""
    context = click.get_current_context()
    build: Callable[[], CommandSystem] | None = context.obj
    if build is None:
        raise click.UsageError("run the users commands through the fastlims command")
    system = build()
    prepare: Callable[[CommandSystem], object] | None = context.meta.get(PREPARE)
    if prepare is not None:
        prepare(system)
    try:
        with system.database.transaction() as session:
            return action(session)
    except service.UserError as exc:
        raise click.ClickException(str(exc)) from None


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w' as a timedelta; ValueError naming the accepted forms."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = text.strip()
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{text!r} is not a duration: use a positive whole number and m, h, d or w, e.g. 90d")
    return timedelta(**{units[unit]: int(value)})


@click.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable user NAME at once: their page sessions and API tokens stop working."""
    _run(lambda s: service.set_active(session=s, username=name, active=False))
    click.echo(f"user {name!r} disabled; their sessions and API tokens no longer work")


@click.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Enable user NAME again: they log in anew; their unrevoked, unexpired tokens work again."""
    _run(lambda s: service.set_active(session=s, username=name, active=True))
    click.echo(f"user {name!r} enabled")


@click.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def users_passwd(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (without --password-stdin one is generated and printed once);
    every page session of NAME ends."""
    from fastlims.users.security import generate_password

    generated = not password_stdin
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin given but no password was read from standard input")
    else:
        password = generate_password()
    _run(lambda s: service.change_password(session=s, username=name, password=password))
    click.echo(f"password of {name!r} changed; their page sessions have ended")
    if generated:
        click.echo(f"one-time password (shown only now): {password}")


@click.command("list")
def users_list() -> None:
    """Users: name, role, state."""
    rows = _run(lambda s: [(u.username, u.role.value, u.is_active) for u in service.get_all(session=s)])
    for username, role, active in rows:
        click.echo(f"{username}\t{role}\t{'active' if active else 'disabled'}")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%MZ") if value else "-"


@click.command("list")
@click.argument("user", required=False)
def tokens_list(user: str | None) -> None:
    """API tokens of USER (or everyone's): id, user, prefix, name, created, last used, expires,
    state. Never the tokens themselves: only their digests are stored."""

    def rows(session: Session) -> list[tuple[Any, ...]]:
        return [
            (t.id, t.user.username, t.prefix, t.name or "-", t.created_at, t.last_used_at, t.expires_at,
             service.token_state(t))
            for t in service.get_tokens(session=session, username=user)
        ]  # fmt: skip

    click.echo("id\tuser\tprefix\tname\tcreated\tlast used\texpires\tstate")
    for token_id, username, prefix, name, created, used, expires, state in _run(rows):
        click.echo(
            f"{token_id}\t{username}\t{prefix}\t{name}\t{_when(created)}\t{_when(used)}\t{_when(expires)}\t{state}"
        )


@click.command("revoke")
@click.argument("token_refs", nargs=-1, required=True, metavar="ID_OR_PREFIX...")
def tokens_revoke(token_refs: tuple[str, ...]) -> None:
    """Revoke tokens by id or prefix (as `fastlims tokens list` shows); refused from the next call on."""

    def revoke(session: Session) -> list[tuple[int, str]]:
        revoked = [service.revoke_token(session=session, token_ref=ref) for ref in token_refs]
        return [(t.id, t.user.username) for t in revoked]

    for token_id, username in _run(revoke):  # all or none: one unknown reference revokes nothing
        click.echo(f"token {token_id} of {username!r} revoked")


def add_account_commands(users: click.Group, tokens: click.Group) -> None:
    for command in (users_disable, users_enable, users_passwd, users_list):
        users.add_command(command)
    for command in (tokens_list, tokens_revoke):
        tokens.add_command(command)
