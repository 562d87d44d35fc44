"""The OpenAPI 3 document of the admin API, generated from :data:`routes.ROUTES`."""

from __future__ import annotations

import re

from onshore import __version__
from onshore.adminapi.routes import ROUTES

_ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            }
        }
    },
}


def document() -> dict[str, object]:
    paths: dict[str, dict[str, object]] = {}
    for route in ROUTES:
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", route.path)
        ]
        operation: dict[str, object] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "x-onshore-role": "tenant-admin" if route.tenant_self else route.role.value,
            "parameters": params,
            "responses": {
                str(route.status): {"description": "Success"},
                "default": _ERROR,
            },
            "security": [{"sigv4": []}],
        }
        if route.body:
            operation["requestBody"] = {
                "description": route.body,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document (no authentication).",
            "operationId": "openapi",
            "responses": {"200": {"description": "The OpenAPI document"}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "onshore admin API",
            "version": __version__,
            "description": "Operator administration of tenants, users, access keys, inline "
            "user policies and quotas. Every request except this document is signed with "
            "AWS Signature Version 4 by the operator's root credentials, service name "
            "'onshore-admin' and the deployment's region.",
        },
        "components": {
            "securitySchemes": {
                "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization"}
            }
        },
        "paths": paths,
    }
