"""``fastlims demo`` and what ``fastlims up`` does before it serves (the first admin, and with
``--demo`` the demo's Digital Twin, emulated benches, accounts and requests).

``fastlims.cli`` adds the command and passes, as the click context's object, how to build the
system (a bad setting is then a CLI error naming it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from fastlims import __version__
from fastlims.bootstrap import System, prepare_database

DEMO_PASSWORD = "fastlims-demo"  # noqa: S105 - documented demo-only credential, see README (users.security)
DEMO_USERS = (
    ("demo-requester", "requester", "Demo Requester"),
    ("demo-manager", "lab_manager", "Demo Lab Manager"),
    ("demo-admin", "admin", "Demo Admin"),
)


def prepare_up(system: System, bind_host: str, *, demo: bool) -> list[Any]:
    """What ``up`` does before it serves: migrate, the first admin, and with ``demo`` the demo's
    Digital Twin, emulated benches, accounts and requests (returned: number, test_UUID, sample)."""
    from fastlims.demo import (
        disable_demo_accounts,
        enable_reference_digital_twin,
        ensure_admin,
        load_demo,
        non_loopback,
    )
    from fastlims.demo_benches import DEMO_BENCH_SPEED, enable_emulated_benches

    if demo:
        exposed = non_loopback(bind_host, system.settings)
        if exposed:
            raise click.ClickException(
                f"--demo refuses to listen on {exposed}: its accounts have a published password."
                " Bind to 127.0.0.1 (FASTLIMS_HTTP_HOST, FASTLIMS_SFTP_HOST, FASTLIMS_MQTT_HOST) or run without --demo"
            )
    prepare_database(system)
    if not demo:
        disabled = disable_demo_accounts(system, tuple(name for name, _, _ in DEMO_USERS))
        if disabled:
            click.echo(f"Demo accounts disabled (started without --demo): {', '.join(disabled)}")
    created = ensure_admin(system)
    if created:
        click.echo(
            f"Created the first administrator: user 'admin', one-time password: {created}\n"
            "  (shown only now; change it by creating your own admin and disabling this one)"
        )
    if not demo:
        return []
    # The twin's partner identity first: the demo's requests are offered to the active partners
    # when they are submitted, and a partner registered later would hear of them only when the
    # LIMS offers unanswered requests again (two minutes on).
    dt_name = enable_reference_digital_twin(system)
    bench_names = enable_emulated_benches(system)
    submitted = load_demo(system, DEMO_USERS, DEMO_PASSWORD)
    click.echo(f"Reference Digital Twin '{dt_name}' answers requests and uploads FMUs over SFTP")
    click.echo(
        f"Emulated physical benches {', '.join(bench_names)} (fastlims bench emulate, one process each,"
        f" {DEMO_BENCH_SPEED:g}x real time) run the Physical requests"
    )
    click.echo(
        "Demo accounts (password 'fastlims-demo'): " + ", ".join(f"{name} ({role})" for name, role, _ in DEMO_USERS)
    )
    return submitted


#: Virtual benches of ``fastlims demo`` unless FASTLIMS_PIPELINE_VIRTUAL_BENCHES says otherwise:
#: one per virtual demo run, so none waits for another's booking.
DEMO_VIRTUAL_BENCHES = 8


@click.command("demo")
@click.option(
    "--until-complete",
    is_flag=True,
    help="Exit when every demo request has ended: 0 when each ended as expected, else 1 (with the reasons).",
)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=300.0, show_default=True, help="s")
@click.option("--host", default=None, help="Override FASTLIMS_HTTP_HOST.")
@click.option("--port", type=int, default=None, help="Override FASTLIMS_HTTP_PORT.")
def demo_command(until_complete: bool, timeout_s: float, host: str | None, port: int | None) -> None:
    """Run the demo: `fastlims up --demo` (web server included) on a fresh data directory, with
    one virtual bench per virtual run (FASTLIMS_PIPELINE_VIRTUAL_BENCHES, default 8 here). With
    --until-complete it prints a line per request state change and, when every demo request has
    ended or --timeout seconds have passed, a summary table (request, test, UUT, benches, state,
    key outcomes, twin residual), then stops the LIMS and its emulated benches."""
    import os
    import time

    from fastlims import logs, runtime
    from fastlims.demo_watch import Watched, watch

    began = time.monotonic()  # the timeout counts from here: start-up included
    overrides: dict[str, Any] = {}
    if "FASTLIMS_PIPELINE_VIRTUAL_BENCHES" not in os.environ:
        overrides["pipeline_virtual_benches"] = DEMO_VIRTUAL_BENCHES
    build: Callable[..., System] = click.get_current_context().obj  # fastlims.cli's system builder
    system = build("up", **overrides)
    logs.configure(system.settings.log_level, system.settings.log_format)
    bind_host = host or system.settings.http_host
    bind_port = port or system.settings.http_port
    submitted = prepare_up(system, bind_host, demo=True)
    if until_complete and not submitted:
        raise click.ClickException(
            f"the database ({system.settings.data_dir}) already has requests, so the demo submitted none to watch:"
            " run `fastlims demo --until-complete` with an empty FASTLIMS_DATA_DIR"
        )
    click.echo(f"FastLIMS {__version__} demo: web on http://{bind_host}:{bind_port}  (API docs: /docs)")
    if not until_complete:
        try:
            runtime.run(system, bind_host, bind_port)
        except runtime.ServiceStartError as exc:
            raise click.ClickException(str(exc)) from None
        return
    watched = [Watched(number, uuid, sample) for number, uuid, sample in submitted]

    def echo(line: str) -> None:
        click.echo(line)

    import asyncio

    try:
        code = asyncio.run(
            runtime.serve_until(
                system,
                bind_host,
                bind_port,
                lambda: watch(system, watched, timeout_s - (time.monotonic() - began), echo),
            )
        )
    except runtime.ServiceStartError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
