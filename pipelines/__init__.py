"""Mailroom's Dagster code location and the engine it drives."""
