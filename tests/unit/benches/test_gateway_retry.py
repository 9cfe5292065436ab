"""The gateway keeps messages it could not store and handles them again: an unacknowledged QoS 1
message comes back only on a new connection, so dropping them on a database outage loses them."""

from __future__ import annotations

from typing import Any

from fastlims.benches.gateway.ingest import BenchGateway
from fastlims.messaging.topics import Topics


class _Flaky(BenchGateway):
    def __init__(self, failures: int) -> None:
        super().__init__(None, Topics("fastest/v1"), connect=lambda: None, notify=lambda *a: None)  # type: ignore[arg-type]
        self.failures = failures
        self.handled: list[list[Any]] = []

    def handle(self, messages: list[Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.handled.append(messages)


def test_messages_that_could_not_be_stored_are_handled_again_not_dropped() -> None:
    gateway = _Flaky(failures=2)
    messages = [(1, 1, "fastest/v1/benches/rig-1/runs/r/metrics", b"{}", 0.0)]
    gateway._handle_until_stored(messages)  # noqa: SLF001 - the writer thread's loop body
    assert gateway.handled == [messages] and gateway.failures == 0


def test_stopping_ends_the_retries() -> None:
    gateway = _Flaky(failures=10**6)
    gateway._stopping.set()  # noqa: SLF001
    gateway._handle_until_stored([(1, 1, "t", b"{}", 0.0)])  # noqa: SLF001
    assert gateway.handled == []
