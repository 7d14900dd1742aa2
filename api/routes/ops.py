"""Operations: liveness, readiness per store, Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServicesDep
from api.metrics import render

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when every store answers; 503 naming the ones that do not."""
    report: dict[str, Any] = {}
    for name, store in services.checks.items():
        try:
            await store.ping()
            report[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which (why: in the log)
            log.warning("readiness: %s does not answer: %s", name, exc)
            report[name] = "unavailable"
    ready = all(v == "ok" for v in report.values())
    return JSONResponse({"ready": ready, "checks": report}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Every metric of this process in the Prometheus text format."""
    body = await render(services.gateway.hub, services.push_queue)
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
