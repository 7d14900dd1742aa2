"""The packages' dependencies point one way, and third-party store clients stay in adapters.

Read from the source (``ast``), so a new import that breaks the layering fails here, named.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each unit may import only the units listed (and itself). inbox's features sit on its core
# and storage plumbing; nothing below imports anything above it.
ALLOWED: dict[str, set[str]] = {
    "idgen": set(),
    "inbox.core": set(),
    "inbox.storage": {"inbox.core", "idgen"},
    "inbox.ratelimit": {"inbox.core", "idgen"},
    "inbox.accounts": {"inbox.core", "inbox.storage", "inbox.ratelimit", "idgen"},
    "inbox.messages": {"inbox.core", "inbox.storage", "inbox.accounts", "inbox.ratelimit",
                       "idgen"},
    "inbox.groups": {"inbox.core", "inbox.storage", "inbox.accounts", "inbox.messages",
                     "idgen"},
    "inbox.conversations": {"inbox.core", "inbox.storage", "inbox.accounts", "inbox.messages",
                            "inbox.groups", "idgen"},
    "inbox.attachments": {"inbox.core", "inbox.storage", "inbox.messages", "idgen"},
    "sync": {"inbox.core", "inbox.accounts", "inbox.messages"},
    "push": {"inbox.core", "inbox.storage", "inbox.accounts", "inbox.messages", "inbox.groups",
             "idgen"},
    "gateway": {"inbox.core", "inbox.accounts", "inbox.messages", "inbox.conversations",
                "inbox.ratelimit", "sync", "idgen"},
}
OURS = ("api", "gateway", "sync", "push", "idgen", "inbox", "messenger_client")

# Store and provider clients, and the files allowed to import each: the adapters.
ADAPTER_ONLY: dict[str, tuple[str, ...]] = {
    "redis": ("_redis.py", "api/stores.py", "api/wiring.py"),
    "cassandra": ("_cassandra.py", "inbox/storage/cql_session.py",
                  "inbox/storage/cql_writes.py"),
    "sqlite3": ("_sqlite.py", "inbox/storage/sqlite_db.py", "messenger_client/profile.py"),
    "pyfcm": ("push/sender_fcm.py",),
    "aioapns": ("push/sender_apns.py",),
    "aioboto3": ("inbox/attachments/blobs_s3.py",),
    "aiobotocore": ("inbox/attachments/blobs_s3.py",),
    "botocore": ("inbox/attachments/blobs_s3.py",),
    "boto3": ("inbox/attachments/blobs_s3.py",),
    "PIL": ("inbox/attachments/images.py",),
}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "inbox" and len(parts) > 1 else parts[0]


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def sources() -> Iterator[tuple[Path, str]]:
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_packages_import_only_what_sits_below_them() -> None:
    wrong = []
    for path, module in sources():
        unit = unit_of(module)
        if unit not in ALLOWED:
            continue  # api (the composition root) and the client may import anything
        for imported in imports(path):
            target = unit_of(imported)
            if imported.split(".")[0] in OURS and target != unit and target != "inbox" \
                    and target not in ALLOWED[unit]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_store_and_provider_clients_are_imported_by_their_adapters_only() -> None:
    wrong = []
    for path, _ in sources():
        relative = path.relative_to(ROOT).as_posix()
        for imported in imports(path):
            allowed = ADAPTER_ONLY.get(imported.split(".")[0])
            if allowed is not None and not relative.endswith(allowed):
                wrong.append(f"{relative} imports {imported}")
    assert wrong == []


def test_the_client_package_imports_nothing_of_the_server() -> None:
    server = {"api", "gateway", "sync", "push", "idgen", "inbox"}
    wrong = [f"{module} imports {imported}" for path, module in sources()
             if module.startswith("messenger_client")
             for imported in imports(path) if imported.split(".")[0] in server]
    assert wrong == []
