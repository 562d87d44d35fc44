"""The operator's admin API: JSON over HTTP on its own port, for the operator's root only.

``app`` (the ASGI application: authentication, errors), ``routes`` (one function per endpoint,
and the table that is both the router and the OpenAPI document), ``openapi`` (that document).
"""
