"""Stopping the services: one that hangs is named and left behind, the others still stop, and the
whole stop stays inside its budget (a test teardown or a SIGTERM never waits on one stuck service)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fastlims.runtime import stop_services


class _Service:
    def __init__(self, name: str, stopped: list[str], hang: bool = False) -> None:
        self.name, self.stopped, self.hang = name, stopped, hang

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self.hang:
            await asyncio.Event().wait()  # never set: a stop that never returns
        self.stopped.append(self.name)


def test_a_hanging_service_is_named_and_the_others_still_stop(caplog: pytest.LogCaptureFixture) -> None:
    stopped: list[str] = []
    services = [_Service("broker", stopped), _Service("relay", stopped, hang=True), _Service("web", stopped)]

    async def scenario() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        overran = await stop_services(services, timeout_s=0.2, budget_s=5.0)  # type: ignore[arg-type]
        return overran, loop.time() - began

    with caplog.at_level(logging.ERROR, logger="fastlims.runtime"):
        overran, took = asyncio.run(scenario())
    assert overran == ["relay"]
    assert stopped == ["web", "broker"]  # reverse order, the hanging one skipped
    assert took < 2.0
    assert any(getattr(r, "service", None) == "relay" for r in caplog.records)


def test_the_budget_bounds_the_whole_stop() -> None:
    stopped: list[str] = []
    services = [_Service(f"s{i}", stopped, hang=True) for i in range(4)]

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await stop_services(services, timeout_s=10.0, budget_s=1.0)  # type: ignore[arg-type]
        return loop.time() - began

    took = asyncio.run(scenario())
    # The budget (1 s) runs out on the first; each later one gets the 0.5 s floor, not 10 s.
    assert took < 1.0 + 3 * 0.5 + 1.0
