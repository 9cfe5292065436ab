"""The test-request lifecycle: states, transitions, service and API."""
