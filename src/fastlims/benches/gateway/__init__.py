"""The LIMS side of the bench contract: commands to physical benches and what they report."""
