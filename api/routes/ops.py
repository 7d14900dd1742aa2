"""Operations: liveness, readiness per store, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from api.deps import ServicesDep
from api.error_docs import ANY_ROUTE, json_errors
from api.responses import HealthOut, ReadyOut

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> HealthOut:
    """The process is up (no store is asked)."""
    return HealthOut(status="ok")


@router.get("/readyz", responses={503: {"model": ReadyOut,
                                        "description": "some store does not answer"}})
async def readyz(services: ServicesDep, response: Response) -> ReadyOut:
    """200 when every store answers; 503 naming the ones that do not."""
    report: dict[str, str] = {}
    for name, store in services.checks.items():
        try:
            await store.ping()
            report[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which
            report[name] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in report.values())
    if not ready:
        response.status_code = 503
    return ReadyOut(ready=ready, checks=report)


@router.get("/metrics", response_class=PlainTextResponse, responses=json_errors(*ANY_ROUTE))
async def metrics(services: ServicesDep) -> str:
    """Prometheus metrics: live WebSockets on this node, push counters."""
    lines = [
        "# TYPE messenger_ws_connections gauge",
        f"messenger_ws_connections {services.gateway.hub.count()}",
    ]
    return "\n".join(lines) + "\n" + services.push_metrics.render_prometheus()
