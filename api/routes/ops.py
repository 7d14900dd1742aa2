"""Operations: liveness, readiness per store, Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServicesDep
from api.error_docs import ANY_ROUTE, json_errors
from api.metrics import render
from api.responses import HealthOut, ReadyOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> HealthOut:
    """The process is up (no store is asked)."""
    return HealthOut(status="ok")


@router.get("/readyz", responses={503: {"model": ReadyOut,
                                        "description": "some store does not answer, or the "
                                                       "node is draining"}})
async def readyz(services: ServicesDep, response: Response) -> ReadyOut:
    """200 when every store answers (and, in production, a worker id is leased: sends need
    one); 503 naming the ones that do not, or at once with ``{"node": "draining"}`` once the
    node is shutting down."""
    if services.gateway.admission.draining:
        response.status_code = 503
        return ReadyOut(ready=False, checks={"node": "draining"})
    report: dict[str, str] = {}
    for name, store in services.checks.items():
        try:
            await store.ping()
            report[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which (why: in the log)
            log.warning("readiness: %s does not answer: %s", name, exc)
            report[name] = "unavailable"
    ready = all(v == "ok" for v in report.values())
    if not ready:
        response.status_code = 503
    return ReadyOut(ready=ready, checks=report)


@router.get("/metrics", response_class=PlainTextResponse, responses=json_errors(*ANY_ROUTE))
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Every metric of this process in the Prometheus text format."""
    body = await render(services.gateway.hub, services.push_queue)
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
