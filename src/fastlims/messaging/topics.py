"""The MQTT topic tree, under a configurable prefix (default ``fastest/v1``).

Conventions (HiveMQ's topic best practices, Sparkplug): no leading slash, ids in the topic, the
current status retained, bench liveness by last will. Every level is plain ASCII without
wildcards, so ids are checked before they become part of a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "fastest/v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9._-]+)*$")


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{kind} {value!r} cannot be a topic level: use letters, digits, '.', '_', ':' or '-'")
    return value


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"topic prefix {prefix!r} must be levels like 'fastest/v1' (no leading or trailing '/')")
    return prefix


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    # LIMS → DT
    def request(self, test_uuid: str) -> str:
        return f"{self.prefix}/requests/{check_id('test_UUID', test_uuid)}"

    # DT → LIMS
    def ack(self, test_uuid: str) -> str:
        return f"{self.request(test_uuid)}/ack"

    # LIMS → all, retained
    def status(self, test_uuid: str) -> str:
        return f"{self.request(test_uuid)}/status"

    def bench_commands(self, bench: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/commands"

    def bench_state(self, bench: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/state"

    # bench → LIMS: the one reply to each command id (bench contract v1)
    def bench_replies(self, bench: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/replies"

    # A run's live messages under the bench that runs it: the bench's MQTT user name is that
    # level, so the ACL lets a bench speak only under its own name.
    def run_events(self, bench: str, run_id: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/runs/{check_id('run_id', run_id)}/events"

    def run_metrics(self, bench: str, run_id: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/runs/{check_id('run_id', run_id)}/metrics"

    # LIMS → DT: a hybrid run's residual (measured − predicted), under the physical run's bench
    def run_comparison(self, bench: str, run_id: str) -> str:
        return f"{self.prefix}/benches/{check_id('bench', bench)}/runs/{check_id('run_id', run_id)}/comparison"

    def errors(self) -> str:
        return f"{self.prefix}/errors"

    # One Digital Twin partner's own topics (its MQTT user name is the level): the request, its
    # status and the ack under partners/<partner>/, so a broker ACL pattern with %u confines each
    # partner to its own requests, and the ack's topic names its sender.
    def partner_request(self, partner: str, test_uuid: str) -> str:
        return f"{self.prefix}/partners/{check_id('partner', partner)}/requests/{check_id('test_UUID', test_uuid)}"

    def partner_ack(self, partner: str, test_uuid: str) -> str:
        return f"{self.partner_request(partner, test_uuid)}/ack"

    def partner_status(self, partner: str, test_uuid: str) -> str:
        return f"{self.partner_request(partner, test_uuid)}/status"

    def partner_run_events(self, partner: str, run_id: str) -> str:
        """The run events of a request the partner serves (a copy of the bench's)."""
        return f"{self.prefix}/partners/{check_id('partner', partner)}/runs/{check_id('run_id', run_id)}/events"

    def partner_run_metrics(self, partner: str, run_id: str) -> str:
        """The live metrics of a request the partner serves (a copy of the bench's)."""
        return f"{self.prefix}/partners/{check_id('partner', partner)}/runs/{check_id('run_id', run_id)}/metrics"

    def partner_run_comparison(self, partner: str, run_id: str) -> str:
        """The residual of a hybrid run of a request the partner serves (the lab's copy)."""
        return f"{self.prefix}/partners/{check_id('partner', partner)}/runs/{check_id('run_id', run_id)}/comparison"

    def partner_errors(self, partner: str) -> str:
        return f"{self.prefix}/partners/{check_id('partner', partner)}/errors"

    # Subscription filters
    @property
    def all_acks(self) -> str:
        """Every partner's acks (the LIMS's subscription)."""
        return f"{self.prefix}/partners/+/requests/+/ack"

    def relative(self, suffix: str) -> str:
        """The outbox stores topics relative to the prefix, so a prefix change needs no migration."""
        return f"{self.prefix}/{suffix}"

    def parse_ack(self, topic: str) -> tuple[str, str] | None:
        """(partner, test_UUID) of an ack topic, or None when the topic is not an ack."""
        head = f"{self.prefix}/partners/"
        if topic.startswith(head) and topic.endswith("/ack"):
            levels = topic[len(head) : -len("/ack")].split("/")
            if len(levels) == 3 and levels[1] == "requests" and all(_ID.match(v) for v in (levels[0], levels[2])):
                return levels[0], levels[2]
        return None
