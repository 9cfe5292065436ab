"""FastLIMS: laboratory information management for hybrid battery testing."""

__version__ = "0.1.0"
