"""The embedded MQTT broker (amqtt, MQTT 3.1.1) with our authentication and topic ACLs.

No anonymous clients: every CONNECT is admitted by ``BrokerPolicy.admit`` before amqtt touches
any session (``amqtt_broker.AclBroker`` says why that needs a subclass): the credentials are
checked against the ``MqttUsers`` table (argon2, in a worker thread) or the LIMS's own
per-process credential, with a lockout per account and per source address after repeated wrong
passwords; the client id must belong to the username (``guard.client_id_belongs``); a last will
must be a topic the identity may publish to. Topic access follows from the identity's role
(``acl.acl_for``); a denied subscribe gets SUBACK 0x80, a denied publish is dropped, counted and
reported on ``…/errors``. A disabled or removed identity is disconnected within
``revocation_poll_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, IDENTIFIER_REJECTED, NOT_AUTHORIZED
from amqtt.plugins.base import BaseTopicPlugin

from fastlims.db.engine import Database
from fastlims.messaging import identities
from fastlims.messaging.acl import Acl, acl_for, allowed
from fastlims.messaging.guard import Throttle, ThrottlePolicy, client_id_belongs
from fastlims.messaging.metrics import MessagingMetrics
from fastlims.messaging.models import MqttRole
from fastlims.messaging.schemas import ErrorMessage, seed_time
from fastlims.messaging.topics import Topics
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0
PASSWORD_CHECKS_AT_ONCE = 2  # argon2 is memory-hard: a CONNECT flood must not take every thread

# amqtt instantiates plugins from dotted names; they find their policy through this registry.
_POLICIES: dict[str, BrokerPolicy] = {}


@dataclass(frozen=True)
class BrokerLimits:
    """The embedded broker's bounds on hostile clients (settings ``FASTLIMS_MQTT_*``)."""

    max_packet_bytes: int = 16 * 1024 * 1024
    connect_timeout_s: float = 10.0
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    revocation_poll_s: float = 1.0


@dataclass
class BrokerPolicy:
    database: Database
    topics: Topics
    metrics: MessagingMetrics
    limits: BrokerLimits = field(default_factory=BrokerLimits)
    internal: dict[str, tuple[str, MqttRole]] = field(default_factory=dict)
    _acls: dict[str, Acl] = field(default_factory=dict)
    _throttle: Throttle | None = None
    _checking: asyncio.Semaphore | None = None

    async def admit(self, session: Any, address: str | None) -> int | None:
        """None to accept the CONNECT, else the CONNACK return code that refuses it."""
        username, password, client_id = session.username, session.password, session.client_id
        if not username or password is None:
            return self._refuse("anonymous", NOT_AUTHORIZED, username, address)
        role = await self._role(username, password, address)
        if isinstance(role, int):
            return role
        if not client_id_belongs(username, client_id or ""):
            return self._refuse("client_id", IDENTIFIER_REJECTED, username, address, client_id=client_id)
        acl = acl_for(role, username, self.topics.prefix)
        if session.will_flag and not allowed(acl, session.will_topic or "", publish=True):
            return self._refuse("will", NOT_AUTHORIZED, username, address, topic=session.will_topic)
        self._acls[username] = acl
        return None

    async def _role(self, username: str, password: str, address: str | None) -> MqttRole | int:
        internal = self.internal.get(username)
        if internal is not None:
            # 144 random bits, compared in constant time: no lockout needed, and none that a
            # guesser on the LIMS's own host could trigger against the LIMS.
            if secrets.compare_digest(internal[0], password):
                return internal[1]
            return self._refuse("bad_credentials", BAD_USERNAME_PASSWORD, username, address)
        throttle = self.throttle
        now = time.monotonic()
        throttle.forget_idle(now)
        locked = throttle.locked(username, address, now)
        if locked is not None:
            return self._refuse(f"locked_{locked}", NOT_AUTHORIZED, username, address)
        if self._checking is None:
            self._checking = asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE)
        async with self._checking:
            role = await asyncio.to_thread(self._check_database, username, password)
        if role is None:
            throttle.failed(username, address, time.monotonic())
            return self._refuse("bad_credentials", BAD_USERNAME_PASSWORD, username, address)
        throttle.succeeded(username)
        return role

    @property
    def max_packet_bytes(self) -> int:
        return self.limits.max_packet_bytes

    @property
    def connect_timeout_s(self) -> float:
        return self.limits.connect_timeout_s

    def refused(self, reason: str) -> None:
        self.metrics.refused_connections.labels(reason).inc()

    @property
    def throttle(self) -> Throttle:
        if self._throttle is None:
            self._throttle = Throttle(self.limits.throttle)
        return self._throttle

    def _refuse(self, reason: str, code: int, username: str | None, address: str | None, **extra: Any) -> int:
        self.metrics.refused_connections.labels(reason).inc()
        log.warning("mqtt connect refused: %s", reason, extra={"mqtt_user": username, "peer": address, **extra})
        return code

    def _check_database(self, username: str, password: str) -> MqttRole | None:
        with self.database.transaction() as session:
            return identities.check(session=session, username=username, password=password)

    def revoked(self, usernames: set[str]) -> set[str]:
        """Which of these database identities are disabled or gone (the LIMS's own never are)."""
        wanted = usernames - set(self.internal)
        if not wanted:
            return set()
        with self.database.transaction() as session:
            active = identities.active_names(session=session, usernames=wanted)
        gone = wanted - active
        for username in gone:
            self._acls.pop(username, None)
        return gone

    def permits(self, username: str | None, topic: str, *, publish: bool) -> bool:
        acl = self._acls.get(username or "")
        return acl is not None and allowed(acl, topic, publish=publish)

    def errors_topic(self, username: str | None) -> str:
        """A partner hears of its refused messages on its own errors topic; others on the lab's."""
        acl = self._acls.get(username or "")
        return (acl.errors if acl is not None else None) or self.topics.errors()


def _policy(context: Any, key: str) -> BrokerPolicy:
    return _POLICIES[key]


class LimsTopicPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        policy_key: str = ""

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or action is Action.RECEIVE:
            return True  # the broker's own messages; delivery was checked at subscribe time
        if topic is None:
            return False
        policy = _policy(self.context, self.config.policy_key)
        publish = action is Action.PUBLISH
        if policy.permits(session.username, topic, publish=publish):
            return True
        kind = "publish" if publish else "subscribe"
        policy.metrics.denied.labels(kind).inc()
        log.warning("mqtt %s denied", kind, extra={"mqtt_user": session.username, "topic": topic})
        error = ErrorMessage(
            topic=topic,
            reason=f"{kind} to {topic!r} is not allowed for MQTT user {session.username!r}",
            client=session.client_id,
            at=seed_time(utcnow()),
        )
        # Reported, never raised: the broker keeps serving everyone else.
        asyncio.get_running_loop().create_task(
            self.context.broadcast_message(policy.errors_topic(session.username), error.model_dump_json().encode(), 0)
        )
        return False


class EmbeddedBroker:
    """BackgroundService: amqtt in our event loop on ``host:port``."""

    name = "mqtt-broker"

    def __init__(self, policy: BrokerPolicy, host: str, port: int) -> None:
        self.policy = policy
        self.host = host
        self.port = port
        self._key = secrets.token_hex(8)
        self._broker: Any = None
        self._watcher: asyncio.Task[None] | None = None

    def add_internal_identity(self, role: MqttRole = MqttRole.lims) -> tuple[str, str]:
        """A per-process credential for our own clients (nothing to store or leak)."""
        username = f"fastlims-{role.value}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        self.policy.internal[username] = (password, role)
        return username, password

    async def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from fastlims.messaging.amqtt_broker import AclBroker

        _POLICIES[self._key] = self.policy
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 2000}},
            "plugins": {f"{__name__}.LimsTopicPlugin": {"policy_key": self._key}},
        }
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._broker = AclBroker(config, self.policy)
            await self._broker.start()
        self._watcher = asyncio.get_running_loop().create_task(self._watch_revocations())
        log.info("embedded MQTT broker listening", extra={"host": self.host, "port": self.port})

    async def _watch_revocations(self) -> None:
        """``fastlims mqtt-users disable|remove`` runs in another process and only changes the
        database: look for connected identities that are no longer active, and disconnect them."""
        while True:
            await asyncio.sleep(self.policy.limits.revocation_poll_s)
            try:
                await self.revoke_now()
            except Exception:  # a database hiccup must not end the watcher
                log.exception("checking for revoked MQTT identities failed; will retry")

    async def revoke_now(self) -> int:
        broker = self._broker
        if broker is None:
            return 0
        present = broker.usernames()
        revoked = await asyncio.to_thread(self.policy.revoked, present) if present else set()
        if not revoked:
            return 0
        closed = int(await broker.disconnect_users(revoked))
        if closed:
            self.policy.metrics.refused_connections.labels("revoked").inc(closed)
            log.warning("disconnected revoked MQTT identities", extra={"mqtt_users": sorted(revoked)})
        return closed

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._broker is not None:
            try:
                # amqtt's shutdown can wait on a client session that never closes (seen once in
                # ~6 CI runs, after ACL refusals): bound it so `fastlims up` always exits.
                await asyncio.wait_for(self._broker.shutdown(), SHUTDOWN_TIMEOUT_S)
            except TimeoutError:
                log.warning("embedded MQTT broker did not shut down within %s s; leaving it", SHUTDOWN_TIMEOUT_S)
            finally:
                self._broker = None
                _POLICIES.pop(self._key, None)
