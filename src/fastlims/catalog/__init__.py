"""The test catalog: UUTs, use cases, standards, test names and their applicability."""
