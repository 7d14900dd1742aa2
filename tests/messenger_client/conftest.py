"""The client's tests against real servers: ``server`` is the API tests' fixture (one real
``messenger serve`` per backend, 1 s heartbeats); the fault tests start their own."""

from tests.api.conftest import backend_env, server

__all__ = ["backend_env", "server"]
