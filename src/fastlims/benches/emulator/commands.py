"""``fastlims bench``: run a bench. ``fastlims bench emulate NAME`` is the bench emulator as its own
process (:mod:`.process`), a physical bench without the hardware speaking bench contract v1."""

from __future__ import annotations

import sys

import click

from fastlims.benches.emulator.protocol import Fault, parse_fault
from fastlims.messaging.topics import check_id


@click.group("bench")
def bench() -> None:
    """Run a bench: the bench emulator, a physical bench without the hardware (bench contract v1)."""


def _fault_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Fault | None:
    if value is None:
        return None
    try:
        return parse_fault(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@bench.command("emulate")
@click.argument("name")
@click.option(
    "--speed", type=click.FloatRange(1, 1000), default=1.0, show_default=True, help="Test seconds per wall second."
)
@click.option("--noise", is_flag=True, help="Add measurement noise to voltage and temperature.")
@click.option(
    "--fault",
    callback=_fault_option,
    default=None,
    help="Misbehave for fault tests: never-answer, reject, offline-after=SECONDS, trip-safety, die-after=SECONDS.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the bench's MQTT password from stdin (else FASTLIMS_BENCH_PASSWORD)."
)
@click.option("--channels", type=click.IntRange(1, 10_000), default=1, show_default=True)
@click.option("--max-current", type=click.FloatRange(min=0, min_open=True), default=50.0, show_default=True, help="A")
@click.option("--min-voltage", type=click.FloatRange(min=0), default=0.0, show_default=True, help="V")
@click.option("--max-voltage", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True, help="V")
@click.option("--temperature-chamber", is_flag=True, help="The bench can set the ambient temperature.")
def bench_emulate(
    name: str,
    speed: float,
    noise: bool,
    fault: Fault | None,
    password_stdin: bool,
    channels: int,
    max_current: float,
    min_voltage: float,
    max_voltage: float,
    temperature_chamber: bool,
) -> None:
    """Run the bench emulator as bench NAME (MQTT user NAME, role bench) until SIGTERM: it takes
    commands, runs their procedures on a model of the UUT and publishes state, events and metrics."""
    from fastlims.benches.emulator.process import EmulatorError, Ratings, emulate, read_password

    try:
        check_id("bench", name)
        ratings = Ratings(channels, max_current, min_voltage, max_voltage, temperature_chamber)
        code = emulate(
            name, speed=speed, noise=noise, fault=fault, ratings=ratings, password=read_password(password_stdin)
        )
    except (EmulatorError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
