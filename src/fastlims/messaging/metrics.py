"""Prometheus counters for messaging, registered in the system's registry (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class MessagingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "fastlims_mqtt_published_total", "Outbox messages published", ["kind"], registry=registry
        )
        self.received = Counter("fastlims_mqtt_received_total", "Inbound messages handled", ["kind"], registry=registry)
        self.rejected = Counter(
            "fastlims_mqtt_rejected_messages_total",
            "Inbound messages refused (reason: not_json, schema, unknown_request, topic_mismatch, ...)",
            ["reason"],
            registry=registry,
        )
        self.denied = Counter(
            "fastlims_mqtt_acl_denied_total",
            "Publishes/subscribes refused by the broker ACL",
            ["action"],
            registry=registry,
        )
        self.refused_connections = Counter(
            "fastlims_mqtt_refused_connections_total", "CONNECTs refused", ["reason"], registry=registry
        )
        self.outbox_pending = Gauge("fastlims_outbox_pending", "Outbox messages not yet published", registry=registry)
        self.connected = Gauge(
            "fastlims_mqtt_connected", "1 while the LIMS is connected to the broker", registry=registry
        )
