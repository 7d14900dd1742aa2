"""``/docs`` and ``/redoc`` work offline: the pages reference only this server's own URLs,
and every asset they load answers 200 with the right content type."""

from __future__ import annotations

import re

import httpx
import pytest

URL_ATTRIBUTES = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: *'([^']+)'""")
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",),
                 ".png": ("image/png",), ".json": ("application/json",)}
MARKERS = {"swagger-ui-bundle.js": "SwaggerUIBundle", "redoc.standalone.js": "Redoc",
           "swagger-ui.css": ".swagger-ui"}
"""What each asset must contain: it is the real file, not an error page."""


def referenced_urls(html: str) -> list[str]:
    return [a or b for a, b in URL_ATTRIBUTES.findall(html)]


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/openapi.json", "/docs-assets/swagger-ui-bundle.js",
               "/docs-assets/swagger-ui.css", "/docs-assets/favicon.png"}),
    ("/redoc", {"/openapi.json", "/docs-assets/redoc.standalone.js",
                "/docs-assets/favicon.png"}),
])
def test_doc_pages_load_only_local_assets(client: httpx.Client, page: str,
                                          expected: set[str]) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text  # nothing from elsewhere
    urls = referenced_urls(r.text)
    assert set(urls) == expected
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex("."):]
        assert asset.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        marker = MARKERS.get(url.rsplit("/", 1)[-1])
        assert marker is None or marker in asset.text, url


def test_an_unknown_asset_is_a_404_envelope(client: httpx.Client) -> None:
    r = client.get("/docs-assets/nope.js")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
