"""Scheduled runs, what benches report about them, their results and outcomes."""
