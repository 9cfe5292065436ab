"""HTTP surface: REST API under /api/v1, the seed's three pages, health and metrics."""
