"""The client package stands alone: it imports nothing from the server's packages or their
dependencies, and its own third-party imports are httpx and websockets only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import messenger_client

SERVER_PACKAGES = ("api", "gateway", "inbox", "sync", "push", "idgen")
SERVER_DEPENDENCIES = ("fastapi", "starlette", "uvicorn", "redis", "cassandra", "pydantic",
                       "pydantic_settings", "jwt", "pyfcm", "aioapns", "google")
PACKAGE_DIR = Path(messenger_client.__file__).parent

BLOCKED_IMPORT = """
import importlib, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name}")
        return None
sys.meta_path.insert(0, Block())
import messenger_client
for module in pkgutil.walk_packages(messenger_client.__path__, "messenger_client."):
    if module.name != "messenger_client.__main__":
        importlib.import_module(module.name)
from messenger_client.cli import main
try:
    main(["send", "--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("imported", len(sys.modules))
"""


def test_every_client_module_imports_with_the_server_packages_blocked() -> None:
    blocked = ",".join(SERVER_PACKAGES + SERVER_DEPENDENCIES)
    done = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT, blocked], cwd=PACKAGE_DIR.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout and "--to-username" in done.stdout


def test_third_party_imports_are_httpx_and_websockets_only() -> None:
    found: set[str] = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    third_party = found - set(sys.stdlib_module_names) - {"messenger_client", "__future__"}
    assert third_party == {"httpx", "websockets"}
