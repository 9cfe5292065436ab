"""Guessing protection for logins: failures counted per account and per source address.

After ``max_failures`` failed logins of one account (or ``max_failures_per_address`` from one
address) within ``lockout_s`` seconds, that account (or address) is locked for ``lockout_s``:
every login is refused, a correct password too, and the caller answers with the seconds to wait
(``Retry-After``). A successful login clears its account's count. The web login and the SFTP
server each keep one throttle; the counts live in the process's memory (a restart forgets them,
and several web processes count separately).

Pure: takes keys and a clock, returns numbers. Unknown account names are counted like known
ones, so a lock says nothing about whether an account exists. The table is bounded
(``max_keys``): an attacker cycling through names cannot grow it without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 10
    max_failures_per_address: int = 30
    lockout_s: float = 900.0
    max_keys: int = 100_000


@dataclass
class _Entry:
    failures: list[float]
    locked_until: float = 0.0


class LoginThrottle:
    """Thread-safe (the web login runs in a worker thread); see the module docstring."""

    def __init__(self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, account: str, address: str | None) -> int | None:
        """Whole seconds until a login of ``account`` from ``address`` may be tried, or None now."""
        now = self._clock()
        with self._lock:
            waits = [
                entry.locked_until - now
                for key in self._keys(account, address)
                if (entry := self._entries.get(key)) is not None and entry.locked_until > now
            ]
        return math.ceil(max(waits)) if waits else None

    def failed(self, account: str, address: str | None) -> None:
        """Count one failed login; lock the account or address that reached its limit."""
        now = self._clock()
        window = self.policy.lockout_s
        with self._lock:
            for key in self._keys(account, address):
                limit = self.policy.max_failures if key.startswith("account:") else self.policy.max_failures_per_address
                entry = self._entries.pop(key, None) or _Entry(failures=[])
                self._entries[key] = entry  # most recent last: the oldest is dropped first
                if entry.locked_until > now:
                    continue  # locked already: refused attempts do not extend the lock
                entry.failures = [t for t in entry.failures if t > now - window] + [now]
                if len(entry.failures) >= limit:
                    entry.locked_until = now + self.policy.lockout_s
                    entry.failures = []
            while len(self._entries) > self.policy.max_keys:
                self._entries.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """A correct login clears the account's count (not its address's: one good account must
        not reset the count of an address that guesses others)."""
        with self._lock:
            self._entries.pop(f"account:{account.lower()}", None)

    @staticmethod
    def _keys(account: str, address: str | None) -> list[str]:
        keys = [f"account:{account.lower()}"]
        if address:
            keys.append(f"address:{address}")
        return keys


def wait_message(seconds: int) -> str:
    """The refusal a user reads: what happened and when to try again."""
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins for this account or from this address: logins are locked for "
        f"{minutes} more minute{'s' if minutes != 1 else ''}. Try again later or ask an administrator."
    )
