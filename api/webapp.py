"""The web app: static files under ``/app/``, shipped in the package (``api/web``).

Plain ES modules, no build step and nothing fetched from elsewhere: the browser loads
``index.html`` and its modules straight from these files. ``/`` redirects to the app.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.staticfiles import PathLike
from starlette.types import Scope

from api.docs_ui import local_url

APP_URL = "/app"
WEB_DIR = Path(__file__).with_name("web")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
"""Only this server's scripts, styles and connections: a message body can never run code.
Images may also be ``blob:`` URLs: photos are fetched with the token and shown from memory."""


class AppFiles(StaticFiles):
    """``StaticFiles`` whose answers are revalidated on every load (``no-cache`` with the
    ETag: after an upgrade no browser mixes old and new modules) and carry the app's CSP."""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_webapp(app: FastAPI) -> None:
    """Mount the web app at ``/app/`` and send ``/`` there."""
    app.mount(APP_URL, AppFiles(directory=WEB_DIR, html=True), name="webapp")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(local_url(request, f"{APP_URL}/"))
