"""Runs the system in one asyncio process: its background services, then the web server
(``fastlims up``), or the services alone until a signal (``fastlims worker``).

Each embedded service (broker, outbox relay, SFTP server, folder watcher, pipeline, virtual bench
worker, ...) is a :class:`~fastlims.system.BackgroundService` that ``bootstrap.build`` puts in
``System.services`` when the settings ask for it; they start in order before the web server and
stop in reverse order after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

import uvicorn

from fastlims.system import BackgroundService, System

__all__ = [
    "BackgroundService",
    "ServiceStartError",
    "run",
    "run_until_signalled",
    "serve_until",
    "start_services",
    "stop_services",
]

log = logging.getLogger(__name__)


class ServiceStartError(RuntimeError):
    """A service could not start (a port in use, a database down, ...); says which and why."""


_HINTS = {
    "mqtt-broker": "another broker may hold the port: set FASTLIMS_MQTT_PORT, or FASTLIMS_MQTT_URL for an external one",
    "intake": "another process may hold the SFTP port: set FASTLIMS_SFTP_PORT",
}


async def start_services(system: System) -> list[BackgroundService]:
    started: list[BackgroundService] = []
    try:
        for service in system.services:
            try:
                await service.start()
            except Exception as exc:  # anything: reported with the service name, then all stop
                hint = next((h for key, h in _HINTS.items() if key in service.name), "")
                raise ServiceStartError(f"{service.name} could not start: {exc}{'; ' + hint if hint else ''}") from exc
            started.append(service)
            log.info("service started", extra={"service": service.name})
    except BaseException:
        await stop_services(started)
        raise
    return started


#: How long one service may take to stop, and all of them together: a service that hangs (a
#: broker waiting on a stuck client, a thread blocked on a socket) is logged by name and left
#: behind, so a SIGTERM still ends the process and a test's teardown stays inside its timeout.
STOP_TIMEOUT_S = 8.0
STOP_BUDGET_S = 20.0


async def stop_services(
    started: list[BackgroundService], *, timeout_s: float = STOP_TIMEOUT_S, budget_s: float = STOP_BUDGET_S
) -> list[str]:
    """Stop the services in reverse order; returns the names of those that overran their time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    overran: list[str] = []
    for service in reversed(started):
        allowed = max(0.5, min(timeout_s, deadline - loop.time()))
        try:
            await asyncio.wait_for(service.stop(), allowed)
            log.info("service stopped", extra={"service": service.name})
        except TimeoutError:
            overran.append(service.name)
            log.error("service did not stop in time", extra={"service": service.name, "timeout_s": round(allowed, 1)})
        except Exception:
            log.exception("service did not stop cleanly", extra={"service": service.name})
    return overran


async def serve(system: System, host: str, port: int) -> None:
    from fastlims.web.app import create_app

    started = await start_services(system)
    try:
        config = uvicorn.Config(create_app(system), host=host, port=port, log_config=None, access_log=False)
        await uvicorn.Server(config).serve()
    finally:
        await stop_services(started)


def run(system: System, host: str, port: int) -> None:
    asyncio.run(serve(system, host, port))


async def serve_until(system: System, host: str, port: int, until: Callable[[], Awaitable[int]]) -> int:
    """Like :func:`serve`, but the web server stops when ``until()`` returns (or on a signal,
    then 130); returns its exit code (``fastlims demo --until-complete``)."""
    from fastlims.web.app import create_app

    started = await start_services(system)
    try:
        config = uvicorn.Config(create_app(system), host=host, port=port, log_config=None, access_log=False)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        watching = asyncio.create_task(until())
        await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        code = watching.result() if watching.done() else 130
        watching.cancel()
        await serving
        return code
    finally:
        await stop_services(started)


async def _until_signalled(system: System) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started = await start_services(system)
    try:
        await stop.wait()
    finally:
        await stop_services(started)


def run_until_signalled(system: System) -> None:
    """``fastlims worker``: run the system's services (no web server) until SIGTERM or SIGINT; a
    killed worker's workflows are resumed by the others."""
    asyncio.run(_until_signalled(system))
