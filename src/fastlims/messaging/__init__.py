"""MQTT messaging: the LIMS ↔ Digital Twin contract, topic tree, embedded broker, outbox relay."""
