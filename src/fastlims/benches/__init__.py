"""Test benches: the registry (which benches exist, their kind, capabilities and calendar); the
virtual bench worker and the physical bench gateway build on it."""
