"""The embedded MQTT broker (amqtt, MQTT 3.1.1) with our authentication and topic ACLs.

No anonymous clients: every CONNECT is checked against the ``MqttUsers`` table (argon2), or the
LIMS's own per-process credential. Topic access follows from the identity's role
(``acl.acl_for``); a denied subscribe gets SUBACK 0x80, a denied publish is dropped, counted and
reported on ``…/errors``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from fastlims.db.engine import Database
from fastlims.messaging import identities
from fastlims.messaging.acl import Acl, acl_for, allowed
from fastlims.messaging.metrics import MessagingMetrics
from fastlims.messaging.models import MqttRole
from fastlims.messaging.schemas import ErrorMessage, seed_time
from fastlims.messaging.topics import Topics
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0

# amqtt instantiates plugins from dotted names; they find their policy through this registry.
_POLICIES: dict[str, BrokerPolicy] = {}


@dataclass
class BrokerPolicy:
    database: Database
    topics: Topics
    metrics: MessagingMetrics
    internal: dict[str, tuple[str, MqttRole]] = field(default_factory=dict)
    _acls: dict[str, Acl] = field(default_factory=dict)

    async def authenticate(self, username: str | None, password: str | None) -> bool:
        if not username or password is None:
            self.metrics.refused_connections.labels("anonymous").inc()
            return False
        internal = self.internal.get(username)
        if internal is not None:
            ok = secrets.compare_digest(internal[0], password)
            role: MqttRole | None = internal[1] if ok else None
        else:
            role = await asyncio.to_thread(self._check_database, username, password)
        if role is None:
            self.metrics.refused_connections.labels("bad_credentials").inc()
            log.warning("mqtt connect refused", extra={"mqtt_user": username})
            return False
        self._acls[username] = acl_for(role, username, self.topics.prefix)
        return True

    def _check_database(self, username: str, password: str) -> MqttRole | None:
        with self.database.transaction() as session:
            return identities.check(session=session, username=username, password=password)

    def permits(self, username: str | None, topic: str, *, publish: bool) -> bool:
        acl = self._acls.get(username or "")
        return acl is not None and allowed(acl, topic, publish=publish)

    def errors_topic(self, username: str | None) -> str:
        """A partner hears of its refused messages on its own errors topic; others on the lab's."""
        acl = self._acls.get(username or "")
        return (acl.errors if acl is not None else None) or self.topics.errors()


def _policy(context: Any, key: str) -> BrokerPolicy:
    return _POLICIES[key]


class LimsAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        policy_key: str = ""

    async def authenticate(self, *, session: Any) -> bool | None:
        policy = _policy(self.context, self.config.policy_key)
        return await policy.authenticate(session.username, session.password)


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


class _SnapshotSubscriptions(dict[str, list[Any]]):
    """amqtt 0.12 walks its subscription table across awaits (``_run_broadcast`` awaits the topic
    plugin per subscriber) while other tasks remove subscriptions of disconnected clients: the
    list shifts under the loop and the next subscriber is skipped, a QoS 1 message silently lost
    after the publisher's PUBACK. Iterating over copies makes a walk see one consistent table."""

    def __iter__(self) -> Any:
        return iter(list(dict.keys(self)))

    def items(self) -> Any:
        return [(key, list(value)) for key, value in dict.items(self)]


def _broker_class() -> type:
    from amqtt.broker import Broker

    class AclBroker(Broker):  # type: ignore[misc]
        """amqtt 0.12 sends a connecting client the retained messages of *every* subscription on
        the broker (anyone's), unchecked by the topic plugin. Only the client's own ones."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._subscriptions = _SnapshotSubscriptions()

        async def _publish_retained_messages_for_subscription(self, subscription: Any, session: Any) -> None:
            holders = self._subscriptions.get(subscription[0], ())
            if any(holder.client_id == session.client_id for holder, _qos in holders):
                await super()._publish_retained_messages_for_subscription(subscription, session)

    return AclBroker


class EmbeddedBroker:
    """BackgroundService: amqtt in our event loop on ``host:port``."""

    name = "mqtt-broker"

    def __init__(self, policy: BrokerPolicy, host: str, port: int) -> None:
        self.policy = policy
        self.host = host
        self.port = port
        self._key = secrets.token_hex(8)
        self._broker: Any = None

    def add_internal_identity(self, role: MqttRole = MqttRole.lims) -> tuple[str, str]:
        """A per-process credential for our own clients (nothing to store or leak)."""
        username = f"fastlims-{role.value}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        self.policy.internal[username] = (password, role)
        return username, password

    async def start(self) -> None:
        Broker = _broker_class()

        _POLICIES[self._key] = self.policy
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 2000}},
            "plugins": {
                f"{__name__}.LimsAuthPlugin": {"policy_key": self._key},
                f"{__name__}.LimsTopicPlugin": {"policy_key": self._key},
            },
        }
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._broker = Broker(config)
            await self._broker.start()
        log.info("embedded MQTT broker listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
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
