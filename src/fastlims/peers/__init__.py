"""Peers of a test: simulation models (FMUs) and the tools that build and run them."""
