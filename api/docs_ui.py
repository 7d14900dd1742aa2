"""``/docs`` (Swagger UI) and ``/redoc`` served with no CDN: the pages load their scripts,
styles and icon from ``/docs-assets``, files shipped by the ``fastapi-offline`` package.

FastAPI's own pages fetch Swagger UI and ReDoc from a CDN, so they are blank on a machine with
no internet access; these are the same pages (``get_swagger_ui_html``, ``get_redoc_html``)
pointed at local copies. Swagger UI's online spec validator is switched off for the same reason.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
SWAGGER_PARAMETERS = {"validatorUrl": None}  # the validator badge calls an online service


def assets_dir() -> Path:
    """The directory of ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``
    and ``favicon.png`` inside the installed ``fastapi_offline`` package."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def local_url(request: Request, path: str) -> str:
    """``path`` on this server, below the root path a proxy may mount the app at."""
    return f"{request.scope.get('root_path', '')}{path}"


def install_docs(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` (create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there too)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    spec = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=local_url(request, spec), title=f"{app.title} - Swagger UI",
            swagger_js_url=local_url(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
            swagger_css_url=local_url(request, f"{ASSETS_URL}/swagger-ui.css"),
            swagger_favicon_url=local_url(request, f"{ASSETS_URL}/favicon.png"),
            oauth2_redirect_url=None,  # no OAuth2 flow: bearer tokens come from login
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=local_url(request, spec), title=f"{app.title} - ReDoc",
            redoc_js_url=local_url(request, f"{ASSETS_URL}/redoc.standalone.js"),
            redoc_favicon_url=local_url(request, f"{ASSETS_URL}/favicon.png"),
            with_google_fonts=False,
        )
