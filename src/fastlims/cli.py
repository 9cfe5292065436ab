"""The ``fastlims`` command: run the system, migrate, manage the catalog, users and tokens.

Every command works on the configured database (``FASTLIMS_DATABASE_URL``), before or while the
server runs. Secrets (generated passwords, tokens) are printed once to stdout, never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fastlims import __version__, cli_base
from fastlims.benches.commands import benches
from fastlims.benches.emulator.commands import bench
from fastlims.bootstrap import prepare_database
from fastlims.catalog.procedure_commands import PREPARE, procedures
from fastlims.cli_mqtt import mqtt_users
from fastlims.config import Settings
from fastlims.demo_commands import DEMO_PASSWORD as DEMO_PASSWORD  # re-exported: tests and scripts name them here
from fastlims.demo_commands import DEMO_USERS as DEMO_USERS
from fastlims.demo_commands import demo_command, prepare_up
from fastlims.pipeline.commands import workflows
from fastlims.users.commands import add_account_commands

_system = cli_base.system
_read_password = cli_base.read_password


@click.group()
@click.version_option(__version__, prog_name="fastlims")
@click.pass_context
def main(ctx: click.Context) -> None:
    """FastLIMS: LIMS for hybrid battery testing with a Digital Twin."""
    ctx.obj = _system  # how the capabilities' command groups get the system (see pipeline.commands)
    ctx.meta[PREPARE] = prepare_database  # and how to migrate and seed its database (catalog.procedure_commands)


main.add_command(workflows)
main.add_command(procedures)
main.add_command(benches)
main.add_command(bench)
main.add_command(mqtt_users)
main.add_command(demo_command)


@main.command()
@click.option("--demo", is_flag=True, help="Create the documented demo accounts and sample requests.")
@click.option("--host", default=None, help="Override FASTLIMS_HTTP_HOST.")
@click.option("--port", type=int, default=None, help="Override FASTLIMS_HTTP_PORT.")
def up(demo: bool, host: str | None, port: int | None) -> None:
    """Migrate the database and serve the web app and API (and, later, every embedded service)."""
    from fastlims import logs, runtime

    system = _system("up")
    logs.configure(system.settings.log_level, system.settings.log_format)
    bind_host = host or system.settings.http_host
    bind_port = port or system.settings.http_port
    prepare_up(system, bind_host, demo=demo)
    click.echo(f"FastLIMS {__version__} starting: web on http://{bind_host}:{bind_port}  (API docs: /docs)")
    try:
        runtime.run(system, bind_host, bind_port)
    except runtime.ServiceStartError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    from fastlims.db import migrate

    system = _system()
    migrate.upgrade(system.database.url, revision)
    click.echo(f"database at {migrate.current_revision(system.database.engine)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION ('base' removes every table)."""
    from fastlims.db import migrate

    system = _system()
    migrate.downgrade(system.database.url, revision)
    click.echo(f"database at {migrate.current_revision(system.database.engine) or 'base'}")


@db.command("current")
def db_current() -> None:
    from fastlims.db import migrate

    system = _system()
    current = migrate.current_revision(system.database.engine)
    click.echo(f"current: {current or 'base (empty)'}; latest: {migrate.head_revision()}")


@main.group()
def catalog() -> None:
    """Import and export the test catalog (YAML or CSV)."""


@catalog.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def catalog_export(file: Path) -> None:
    """Write the catalog to FILE (.yaml/.yml or .csv); an empty catalog gets the shipped seed first."""
    from fastlims.catalog.transfer import CatalogFileError, export_file

    system = _system()
    prepare_database(system)
    try:
        with system.database.transaction() as session:
            export_file(session, file)
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"catalog written to {file}")


@catalog.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def catalog_import(file: Path) -> None:
    """Upsert the catalog from FILE; every row is checked first and nothing changes on error."""
    from fastlims.catalog.transfer import CatalogFileError, import_file

    system = _system()
    prepare_database(system, seed_catalog=False)
    try:
        with system.database.transaction() as session:
            report = import_file(session, file)
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"imported {file}: {report.summary()}")


@main.group()
def users() -> None:
    """People who use the LIMS."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["requester", "lab_manager", "admin", "model_uploader"]), required=True)
@click.option("--display-name", default=None, help="Full name shown on pages and requests.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--partner", default=None, help="model_uploader only: the Digital Twin partner it uploads for.")
def users_add(name: str, role: str, display_name: str | None, password_stdin: bool, partner: str | None) -> None:
    """Add user NAME with ROLE; without --password-stdin a password is generated and printed once.
    A model_uploader (--partner P) is partner P's HTTP upload account: it uploads model files for
    P's requests and can do nothing else."""
    from fastlims.intake import partners
    from fastlims.users import service

    system = _system()
    prepare_database(system, seed_catalog=False)
    password, generated = _read_password(password_stdin)
    try:
        with system.database.transaction() as session:
            if partner is not None and partners.get(session=session, name=partner) is None:
                raise service.UserError(f"partner {partner!r} does not exist; add it with `fastlims partners add`")
            service.create(
                session=session,
                username=name,
                role=role,
                password=password,
                display_name=display_name,
                partner=partner,
            )
    except service.UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {name!r} added with role {role}")
    if generated:
        click.echo(f"one-time password (shown only now): {password}")


@main.group()
def tokens() -> None:
    """API tokens for scripts and partners."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", default="", help="What the token is for, e.g. 'nightly export'.")
@click.option("--expires", default=None, help="Refuse the token after this long: 90d, 12h, 30m (default: never).")
def tokens_create(user: str, name: str, expires: str | None) -> None:
    """Print a new API token for USER (shown only now; only its digest is stored)."""
    from fastlims.timeutil import utcnow
    from fastlims.users import service
    from fastlims.users.commands import parse_duration

    expires_at = None
    if expires is not None:
        try:
            expires_at = utcnow() + parse_duration(expires)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from None
    system = _system()
    prepare_database(system, seed_catalog=False)
    try:
        with system.database.transaction() as session:
            token = service.create_token(session=session, username=user, name=name, expires_at=expires_at)
    except service.UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)


add_account_commands(users, tokens)


@main.command()
def asyncapi() -> None:
    """Print the AsyncAPI 3.0 document of the MQTT contract (YAML)."""
    from fastlims.messaging.asyncapi import as_yaml

    settings = Settings()
    click.echo(as_yaml(_topics(settings), f"{settings.mqtt_host}:{settings.mqtt_port}"), nl=False)


def _topics(settings: Settings):  # type: ignore[no-untyped-def]
    from fastlims.messaging.topics import Topics

    return Topics(settings.mqtt_topic_prefix)


@main.group()
def partners() -> None:
    """Digital Twin partners: one name for SFTP (public keys), MQTT and HTTP model upload."""


def _partner_command(action):  # type: ignore[no-untyped-def]
    """Run ``action(session)`` on the migrated database; a PartnerError becomes a CLI error."""
    from fastlims.intake.partners import PartnerError

    system = _system()
    prepare_database(system, seed_catalog=False)
    try:
        with system.database.transaction() as session:
            return system, action(session)
    except PartnerError as exc:
        raise click.ClickException(str(exc)) from None


@partners.command("add")
@click.argument("name")
@click.option(
    "--key",
    "key_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The partner's OpenSSH public key (.pub); repeat for several. Without: no SFTP (MQTT and HTTP only).",
)
@click.option("--quota", default=None, help="Pool space, e.g. 5GB (default FASTLIMS_INTAKE_PARTNER_QUOTA_BYTES).")
def partners_add(name: str, key_files: tuple[str, ...], quota: str | None) -> None:
    """Add partner NAME: SFTP user NAME, chrooted to pool/NAME/, logging in with --key only."""
    from fastlims.intake import partners as service

    text = "\n".join(Path(f).read_text(errors="replace") for f in key_files)
    size = service.parse_size(quota) if quota else None
    system, partner = _partner_command(
        lambda s: service.create(session=s, name=name, key_text=text, quota_bytes=size, source=", ".join(key_files))
    )
    settings = system.settings
    click.echo(f"partner {name!r} added; keys: " + ", ".join(k.fingerprint for k in service.keys_of(partner)))
    click.echo(
        f"  upload with: sftp -P {settings.sftp_port} {name}@{settings.sftp_host}  (then put FILE /<test_UUID>/)"
    )


@partners.command("add-key")
@click.argument("name")
@click.option("--key", "key_files", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False))
def partners_add_key(name: str, key_files: tuple[str, ...]) -> None:
    """Add public key(s) to partner NAME (key rotation: add the new one, then remove the old)."""
    from fastlims.intake import partners as service

    text = "\n".join(Path(f).read_text(errors="replace") for f in key_files)
    _, partner = _partner_command(lambda s: service.add_keys(session=s, name=name, key_text=text))
    click.echo(f"partner {name!r} keys: " + ", ".join(k.fingerprint for k in service.keys_of(partner)))


@partners.command("remove-key")
@click.argument("name")
@click.argument("fingerprint")
def partners_remove_key(name: str, fingerprint: str) -> None:
    """Remove the key with FINGERPRINT (SHA256:…, as `partners list` shows) from partner NAME."""
    from fastlims.intake import partners as service

    _partner_command(lambda s: service.remove_key(session=s, name=name, fingerprint=fingerprint))
    click.echo(f"key {fingerprint} removed from partner {name!r}")


@partners.command("disable")
@click.argument("name")
def partners_disable(name: str) -> None:
    """Refuse partner NAME's logins from now on (its files stay where they are)."""

    _partner_command(lambda s: _set_partner_active(s, name, False))
    click.echo(f"partner {name!r} disabled (SFTP, MQTT identity and HTTP uploads)")


@partners.command("enable")
@click.argument("name")
def partners_enable(name: str) -> None:

    _partner_command(lambda s: _set_partner_active(s, name, True))
    click.echo(f"partner {name!r} enabled")


def _set_partner_active(session, name: str, active: bool):  # type: ignore[no-untyped-def]
    """The partner is one identity: its SFTP account, its MQTT identity (no new CONNECT) and its
    HTTP uploads (checked against the partner) go together."""
    from sqlalchemy import update

    from fastlims.intake import partners as service
    from fastlims.messaging.models import MqttRole, MqttUser

    partner = service.set_active(session=session, name=name, active=active)
    session.execute(
        update(MqttUser).where(MqttUser.username == name, MqttUser.role == MqttRole.partner).values(is_active=active)
    )
    return partner


@partners.group("route")
def partners_route() -> None:
    """Which partner serves the requests of a UUT or a test name (else: the first to accept)."""


def _route_target(test: str | None, uut: str | None) -> tuple[str, str]:
    if (test is None) == (uut is None):
        raise click.UsageError("give exactly one of --test NAME or --uut CODE")
    return ("uut", uut) if uut is not None else ("test", test)  # type: ignore[return-value]


@partners_route.command("add")
@click.argument("name")
@click.option("--test", default=None, help="A test name (catalog), e.g. 'Capacity test'.")
@click.option("--uut", default=None, help="A UUT code (catalog); a UUT's route wins over its test's.")
def partners_route_add(name: str, test: str | None, uut: str | None) -> None:
    """Send the requests of a UUT or a test name to partner NAME only (from their next announcement)."""
    from fastlims.intake import partners as service
    from fastlims.requests import routing

    kind, value = _route_target(test, uut)

    def add(session):  # type: ignore[no-untyped-def]
        if service.get(session=session, name=name) is None:
            raise service.PartnerError(f"partner {name!r} does not exist; add it with `fastlims partners add`")
        try:
            return routing.add_route(session=session, partner=name, kind=kind, value=value)
        except routing.RoutingError as exc:
            raise service.PartnerError(str(exc)) from None

    _partner_command(add)
    click.echo(f"requests of {kind} {value!r} go to partner {name!r}")


@partners_route.command("remove")
@click.option("--test", default=None)
@click.option("--uut", default=None)
def partners_route_remove(test: str | None, uut: str | None) -> None:
    from fastlims.intake import partners as service
    from fastlims.requests import routing

    kind, value = _route_target(test, uut)

    def remove(session):  # type: ignore[no-untyped-def]
        try:
            routing.remove_route(session=session, kind=kind, value=value)
        except routing.RoutingError as exc:
            raise service.PartnerError(str(exc)) from None

    _partner_command(remove)
    click.echo(f"route for {kind} {value!r} removed; its requests go to the first partner to accept")


@partners_route.command("list")
def partners_route_list() -> None:
    from fastlims.requests import routing

    _, found = _partner_command(lambda s: [(r.kind, r.value, r.partner) for r in routing.routes(session=s)])
    for kind, value, partner in found:
        click.echo(f"{kind}\t{value}\t{partner}")


@partners.command("list")
def partners_list() -> None:
    """Partners, state, quota and key fingerprints (never the keys themselves)."""
    from fastlims.intake import partners as service

    def rows(session):  # type: ignore[no-untyped-def]
        return [
            (p.name, p.is_active, p.quota_bytes, [k.fingerprint for k in service.keys_of(p)])
            for p in service.get_all(session=session)
        ]

    system, found = _partner_command(rows)
    default_quota = system.settings.intake_partner_quota_bytes
    for name, active, quota, fingerprints in found:
        state = "active" if active else "disabled"
        click.echo(f"{name}\t{state}\tquota {quota or default_quota} bytes\t{' '.join(fingerprints)}")


@main.command()
@click.option("--executor-id", default=None, help="This worker's stable id (default: host + data dir + 'worker').")
@click.option("--concurrency", type=int, default=None, help="Workflows at once (FASTLIMS_PIPELINE_WORKER_CONCURRENCY).")
def worker(executor_id: str | None, concurrency: int | None) -> None:
    """Run pipeline workflows without the web server, broker or SFTP; start one per core or
    machine, on the same database (PostgreSQL for several machines)."""
    from fastlims import logs, runtime
    from fastlims.db import migrate
    from fastlims.pipeline.engine import ExecutorInUse

    updates: dict[str, Any] = {}
    if executor_id:
        updates["pipeline_executor_id"] = executor_id
    if concurrency:
        updates["pipeline_worker_concurrency"] = concurrency
    system = _system("worker", **updates)
    logs.configure(system.settings.log_level, system.settings.log_format)
    current, head = migrate.current_revision(system.database.engine), migrate.head_revision()
    if current != head:
        raise click.ClickException(f"the database is at {current or 'base'}, not {head}: run fastlims db upgrade first")
    engine = system.pipeline.engine
    click.echo(f"FastLIMS worker {engine.identity.executor_id} ({engine.identity.application_version})")
    try:
        runtime.run_until_signalled(system)
    except runtime.ServiceStartError as exc:
        cause = exc.__cause__
        raise click.ClickException(str(cause if isinstance(cause, ExecutorInUse) else exc)) from None


if __name__ == "__main__":
    main()
