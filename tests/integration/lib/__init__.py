"""Helpers shared by the integration tests (deployment fixture, polling)."""
