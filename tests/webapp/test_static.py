"""The web app's files: served at ``/app/`` with their types, revalidated on every load, under
a CSP; ``/`` leads there; and every file is package data (``pip install .`` ships it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.api.server import MessengerProcess
from tests.webapp.browser import app_dir

ROOT = Path(__file__).resolve().parents[2]
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


def web_files() -> list[Path]:
    return sorted(p for p in app_dir().rglob("*") if p.is_file())


def test_every_file_is_served(web_server: MessengerProcess) -> None:
    with web_server.client() as http:
        for path in web_files():
            url = f"/app/{path.relative_to(app_dir()).as_posix()}"
            r = http.get(url)
            assert r.status_code == 200, url
            assert r.headers["content-type"].startswith(TYPES[path.suffix]), url
            assert r.headers["cache-control"] == "no-cache"
            assert "script-src" not in r.headers["content-security-policy"]  # 'self' only
            assert r.headers["content-security-policy"].startswith("default-src 'self';")
            assert r.content == path.read_bytes()


def test_root_and_app_lead_to_the_app(web_server: MessengerProcess) -> None:
    with web_server.client() as http:
        for path in ("/", "/app"):
            r = http.get(path)
            assert (r.status_code, r.headers["location"].rstrip("/").endswith("/app")) == (
                307, True), path
        page = http.get("/app/")
        assert '<script type="module" src="js/app/main.js">' in page.text


def test_every_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    api = ROOT / "api"
    shipped = {p for pattern in patterns for p in api.glob(pattern)}
    assert sorted(shipped) == web_files()
