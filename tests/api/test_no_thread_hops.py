"""Every route and every dependency runs on the event loop: FastAPI runs a plain ``def``
endpoint or dependency in a worker thread, one thread hop per call per request (the typed
service dependencies once cost a REST send ~40% of its throughput that way)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import api.routes


def _sync_calls(dependant: Dependant) -> list[str]:
    found = []
    for dep in dependant.dependencies:
        call = dep.call
        runs_on_loop = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
            getattr(call, "__call__", None))  # noqa: B004 - security schemes are callables
        if not runs_on_loop:
            found.append(getattr(call, "__qualname__", repr(call)))
        found += _sync_calls(dep)
    return found


def test_no_route_or_dependency_runs_in_a_worker_thread() -> None:
    modules = [importlib.import_module(f"api.routes.{info.name}")
               for info in pkgutil.iter_modules(api.routes.__path__)]
    routes = [route for module in modules for route in module.router.routes
              if isinstance(route, APIRoute)]
    assert len(routes) > 20
    offenders = {
        route.path: calls
        for route in routes
        if (calls := _sync_calls(route.dependant)
            + ([] if inspect.iscoroutinefunction(route.endpoint) else [route.name]))
    }
    assert offenders == {}
