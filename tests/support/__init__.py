"""Helpers shared by the test suites: real redis-server processes, free ports, settings."""
