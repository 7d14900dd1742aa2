"""Operations: liveness, readiness per store, Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ServicesDep

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
async def metrics(services: ServicesDep) -> str:
    lines = [
        "# TYPE messenger_ws_connections gauge",
        f"messenger_ws_connections {services.gateway.hub.count()}",
    ]
    return "\n".join(lines) + "\n" + services.push_metrics.render_prometheus()
