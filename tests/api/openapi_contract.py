"""Checks real HTTP answers against the server's own ``/openapi.json``.

``Contract.check`` is an httpx response hook: it finds the operation the request hit, requires
the status to be documented there, and validates the body with a JSON Schema Draft 2020-12
validator whose ``$ref``s resolve through a ``referencing`` registry holding the document
(OpenAPI 3.1 schemas are 2020-12 schemas; ``#/components/schemas/...`` resolves against it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:messenger:openapi"
METHODS = ("get", "put", "post", "delete", "patch")


def pointer_part(text: str) -> str:
    """One JSON Pointer segment (RFC 6901 escapes)."""
    return text.replace("~", "~0").replace("/", "~1")


def template_pattern(template: str) -> re.Pattern[str]:
    """``/v1/users/{user_id}`` -> a pattern matching one path segment per parameter."""
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


@dataclass
class Contract:
    """The OpenAPI document of one server, and the answers checked against it so far."""

    doc: dict[str, Any]
    checked: set[tuple[str, str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
        # Literal paths before templated ones: /v1/users/me is not /v1/users/{user_id}.
        self._templates: list[str] = sorted(self.doc["paths"], key=lambda p: ("{" in p, p))
        self._patterns = {t: template_pattern(t) for t in self._templates}

    def operations(self) -> set[tuple[str, str]]:
        """Every (METHOD, path template) the document describes."""
        return {(m.upper(), path) for path, item in self.doc["paths"].items()
                for m in item if m in METHODS}

    def template(self, path: str) -> str:
        for template in self._templates:
            if self._patterns[template].match(path):
                return template
        raise AssertionError(f"{path} is not in /openapi.json")

    def check(self, response: httpx.Response) -> None:
        """Validate one answer against its operation's documented response (an httpx hook)."""
        response.read()
        request = response.request
        template = self.template(request.url.path)
        method = request.method.lower()
        operation = self.doc["paths"][template].get(method)
        assert operation is not None, f"{request.method} {template} is not documented"
        status = response.status_code
        documented = operation["responses"]
        assert str(status) in documented, (
            f"{request.method} {template} answered {status}, documented "
            f"{sorted(documented)}: {response.text[:300]}")
        content = documented[str(status)].get("content")
        if not content:
            assert response.content == b"", f"{request.method} {template} {status} has a body"
        else:
            media = response.headers["content-type"].split(";")[0]
            assert media in content, f"{request.method} {template} {status}: {media}"
            pointer = "/".join(["", "paths", pointer_part(template), method, "responses",
                                str(status), "content", pointer_part(media), "schema"])
            body = response.json() if media == "application/json" else response.text
            self.validate(body, pointer)
        self.checked.add((request.method, template, status))

    def validate(self, instance: Any, pointer: str) -> None:
        """Validate ``instance`` against the schema at ``pointer`` in the document."""
        schema = {"$ref": f"{DOC_URI}#{pointer}"}
        Draft202012Validator(schema, registry=self.registry).validate(instance)
