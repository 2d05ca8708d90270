"""Helpers shared by the test suite: real worker processes, external services."""
