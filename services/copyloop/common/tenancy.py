"""The calling tenant and request id of the current RPC, set by the auth interceptor.

Domain code reads the tenant from here instead of taking it from requests, so no request can
name another tenant's data.
"""

from __future__ import annotations

import contextvars

from copyloop.common.errors import Unauthenticated

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_tenant() -> str:
    tenant = _tenant.get()
    if not tenant:
        raise Unauthenticated("no tenant bound to this call")
    return tenant


def current_request_id() -> str:
    return _request_id.get()


Tokens = tuple[contextvars.Token[str | None], contextvars.Token[str]]
"""What `bind` returns and `unbind` takes back: the previous tenant and request id."""


def bind(tenant: str | None, request_id: str) -> Tokens:
    return _tenant.set(tenant), _request_id.set(request_id)


def unbind(tokens: Tokens) -> None:
    _tenant.reset(tokens[0])
    _request_id.reset(tokens[1])
