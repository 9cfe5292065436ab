"""The rules a broker applies to a CONNECT before it touches any session: which client ids an
identity may use, and when password guessing locks an account or a source address.

Pure: data in, data out, the clock passed in. The embedded broker (``broker.py``) applies them;
docs/mqtt.md and docs/security.md state them for partners and for a lab running Mosquitto.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from dataclasses import dataclass, field

CLIENT_ID_SEPARATOR = "/"
MAX_CLIENT_ID_LENGTH = 128


def client_id_belongs(username: str, client_id: str) -> bool:
    """A client id belongs to one username: it is the username itself or starts with
    ``username/``. Nobody can then take over (or wipe) another identity's session by reusing
    its client id, even with valid credentials of their own."""
    if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
        return False
    return client_id == username or client_id.startswith(username + CLIENT_ID_SEPARATOR)


def client_id_for(username: str, suffix: str) -> str:
    """``username/suffix``: the form every FastLIMS client uses."""
    return f"{username}{CLIENT_ID_SEPARATOR}{suffix}"


def lims_client_suffix(secret: str) -> str:
    """The LIMS's stable but unguessable client-id suffix, derived from the LIMS's secret key:
    the same across restarts (the broker keeps the LIMS's persistent session), and nobody without
    the key can name it."""
    digest = hmac.new(secret.encode(), b"fastlims mqtt client id", hashlib.sha256).hexdigest()
    return f"lims-{digest[:20]}"


@dataclass(frozen=True)
class ThrottlePolicy:
    """``max_failures`` wrong passwords within ``lock_s`` lock the account, and separately the
    source address, until ``lock_s`` after the last of them."""

    max_failures: int = 10
    lock_s: float = 900.0


@dataclass
class Throttle:
    """Counts failed CONNECT authentications per account and per source address.

    A locked key is refused without checking the password (no argon2 work for a guesser). A
    success clears its account's failures but not its address's: a guesser that also owns one
    valid account cannot reset the address counter by logging in between guesses.
    """

    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, username: str, address: str | None, now: float) -> str | None:
        """Which key is locked (``account`` or ``address``), or None."""
        for kind, key in self._keys(username, address):
            if self._locked_until.get(key, now) > now:
                return kind
        return None

    def failed(self, username: str, address: str | None, now: float) -> None:
        for _kind, key in self._keys(username, address):
            times = self._failures.setdefault(key, deque())
            while times and now - times[0] >= self.policy.lock_s:
                times.popleft()
            times.append(now)
            if len(times) >= self.policy.max_failures:
                self._locked_until[key] = now + self.policy.lock_s
                times.clear()

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"account:{username}", None)

    def forget_idle(self, now: float) -> None:
        """Drop keys with nothing recent, so a scan of many names or addresses cannot grow memory."""
        for key in [k for k, times in self._failures.items() if not times or now - times[-1] >= self.policy.lock_s]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[str, str]]:
        keys = [("account", f"account:{username}")]
        if address:
            keys.append(("address", f"address:{address}"))
        return keys
