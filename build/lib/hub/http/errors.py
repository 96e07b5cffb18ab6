"""Refusals before GraphQL runs, answered as GraphQL-shaped JSON with a stable code."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from hub.errors import RequestErrorCode

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


class RequestRefused(Exception):
    """Raised anywhere in the HTTP layer; the app answers ``status`` with a GraphQL error body."""

    def __init__(
        self,
        status: int,
        code: RequestErrorCode,
        message: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extensions = extensions


def media_type(accept: str | None) -> str:
    """The media type to answer in (GraphQL over HTTP): application/graphql-response+json when the
    client ranks it at least as high as application/json (by q-value), else application/json."""
    if not accept or GRAPHQL_RESPONSE_JSON not in accept:
        return "application/json"
    ranks = {GRAPHQL_RESPONSE_JSON: 0.0, "application/json": 0.0}
    for entry in accept.split(","):
        kind, *params = (part.strip() for part in entry.split(";"))
        kind = kind.lower()
        if kind not in ranks:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranks[kind] = max(ranks[kind], q)
    modern = ranks[GRAPHQL_RESPONSE_JSON]
    return GRAPHQL_RESPONSE_JSON if modern > 0 and modern >= ranks["application/json"] else "application/json"


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


def refusal_response(refused: RequestRefused, accept: str | None) -> Response:
    return Response(
        error_body(refused.message, refused.code.value, **refused.extensions),
        status_code=refused.status,
        media_type=media_type(accept),
        headers=refused.headers,
    )


def status_code_of(status: int) -> RequestErrorCode:
    """The code for a refusal that Strawberry raised with only an HTTP status."""
    if status == 405:
        return RequestErrorCode.METHOD_NOT_ALLOWED
    if status == 413:
        return RequestErrorCode.PAYLOAD_TOO_LARGE
    return RequestErrorCode.BAD_REQUEST
