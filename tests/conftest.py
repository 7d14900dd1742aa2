"""Shared pytest configuration: real Redis/Cassandra server fixtures for every test module."""

pytest_plugins = ["tests.servers.fixtures"]
