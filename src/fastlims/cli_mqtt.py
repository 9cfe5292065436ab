"""``fastlims mqtt-users``: the MQTT identities of Digital Twin partners, test benches and
monitors, for the embedded broker (and a Mosquitto acl_file with the same policy)."""

from __future__ import annotations

import click

from fastlims.bootstrap import prepare_database
from fastlims.cli_base import read_password as _read_password
from fastlims.cli_base import system as _system


@click.group("mqtt-users")
def mqtt_users() -> None:
    """MQTT identities for Digital Twin partners and test benches (embedded broker)."""


@mqtt_users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["partner", "bench", "monitor"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def mqtt_users_add(name: str, role: str, password_stdin: bool) -> None:
    """Add MQTT identity NAME; its topic ACL follows from ROLE (a bench's NAME is its bench id; a
    partner's NAME is its partner name, added first with `fastlims partners add NAME`). Role monitor
    only reads the benches' state, run events and metrics: an integrator's dashboard or
    `mosquitto_sub`, which can neither command a bench nor speak for one."""
    from fastlims.intake import partners
    from fastlims.messaging import identities

    system = _system()
    prepare_database(system, seed_catalog=False)
    password, generated = _read_password(password_stdin)
    try:
        with system.database.transaction() as session:
            known = partners.get(session=session, name=name) is not None
            if role == "partner" and not known:
                raise identities.IdentityError(
                    f"there is no Digital Twin partner {name!r}: add it first with `fastlims partners add {name}`"
                    " (one name for its SFTP, MQTT and HTTP upload identities)"
                )
            if role == "bench" and known:
                raise identities.IdentityError(f"{name!r} is a Digital Twin partner's name; a bench needs its own")
            identities.add(session=session, username=name, role=role, password=password)
    except identities.IdentityError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"MQTT user {name!r} added with role {role}")
    if generated:
        click.echo(f"one-time password (shown only now): {password}")


@mqtt_users.command("list")
def mqtt_users_list() -> None:
    from fastlims.messaging import identities

    system = _system()
    prepare_database(system, seed_catalog=False)
    with system.database.transaction() as session:
        for user in identities.get_all(session=session):
            click.echo(f"{user.username}\t{user.role.value}\t{'active' if user.is_active else 'disabled'}")


@mqtt_users.command("mosquitto-acl")
@click.option("--lims-user", default=None, help="The LIMS's Mosquitto user (default FASTLIMS_MQTT_USERNAME).")
def mqtt_users_mosquitto_acl(lims_user: str | None) -> None:
    """Print a Mosquitto acl_file with the same per-identity policy as the embedded broker."""
    from fastlims.messaging import identities
    from fastlims.messaging.acl import mosquitto_acl
    from fastlims.messaging.models import MqttRole

    system = _system()
    prepare_database(system, seed_catalog=False)
    lims = lims_user or system.settings.mqtt_username
    with system.database.transaction() as session:
        found = [(u.username, u.role) for u in identities.get_all(session=session) if u.is_active]
    click.echo(mosquitto_acl(([(lims, MqttRole.lims)] if lims else []) + found, system.settings.mqtt_topic_prefix))


def _mqtt_user_change(name: str, change) -> None:  # type: ignore[no-untyped-def]
    from fastlims.messaging import identities

    system = _system()
    prepare_database(system, seed_catalog=False)
    try:
        with system.database.transaction() as session:
            change(identities, session)
    except identities.IdentityError as exc:
        raise click.ClickException(str(exc)) from None


@mqtt_users.command("disable")
@click.argument("name")
def mqtt_users_disable(name: str) -> None:
    """Disable NAME: a running embedded broker disconnects it within a second and refuses it."""
    _mqtt_user_change(name, lambda ids, session: ids.set_active(session=session, username=name, active=False))
    click.echo(f"MQTT user {name!r} disabled")


@mqtt_users.command("enable")
@click.argument("name")
def mqtt_users_enable(name: str) -> None:
    """Enable NAME again."""
    _mqtt_user_change(name, lambda ids, session: ids.set_active(session=session, username=name, active=True))
    click.echo(f"MQTT user {name!r} enabled")


@mqtt_users.command("remove")
@click.argument("name")
def mqtt_users_remove(name: str) -> None:
    """Remove NAME: a running embedded broker disconnects it within a second and refuses it."""
    _mqtt_user_change(name, lambda ids, session: ids.remove(session=session, username=name))
    click.echo(f"MQTT user {name!r} removed")
