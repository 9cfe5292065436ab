"""Limits every request body before any route reads it, and marks cookies ``Secure`` over HTTPS.

A body larger than its limit is answered 413 with a message naming the limit and the setting:
at once when ``Content-Length`` declares it (nothing of the body is read), or as soon as the
streamed body (chunked, or longer than declared) passes it. Limits, from the settings:

- a model file ``PUT /api/v1/requests/{test_UUID}/models/{file}``: ``FASTLIMS_INTAKE_MAX_FILE_BYTES``;
- the Event Grid webhook: ``FASTLIMS_EVENTGRID_MAX_BODY_BYTES``;
- everything else (JSON, forms: profiles, procedures, strings): ``FASTLIMS_HTTP_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from fastlims.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MODEL_PUT = re.compile(r"^/api/v1/requests/[^/]+/models/[^/]+$")
EVENTGRID_PATH = "/api/v1/events/eventgrid"


def body_limit(settings: Settings, method: str, path: str) -> tuple[int, str]:
    """(largest body in bytes, the setting that sets it) for a request."""
    if method == "PUT" and _MODEL_PUT.match(path):
        return settings.intake_max_file_bytes, "FASTLIMS_INTAKE_MAX_FILE_BYTES"
    if path == EVENTGRID_PATH:
        return settings.eventgrid_max_body_bytes, "FASTLIMS_EVENTGRID_MAX_BODY_BYTES"
    return settings.http_max_body_bytes, "FASTLIMS_HTTP_MAX_BODY_BYTES"


def too_large_message(limit: int, setting: str) -> str:
    if setting == "FASTLIMS_INTAKE_MAX_FILE_BYTES":
        return f"the file is larger than {limit} bytes"  # the upload route's own words
    return f"the request body is larger than the limit of {limit} bytes ({setting})"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit; FastAPI re-raises an
    HTTPException met while reading a body, so the route's answer is this 413."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, too_large_message(limit, setting))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = body_limit(self.settings, scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer_413(send, too_large_message(limit, setting))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:  # read outside a route (a middleware): answer here
            if started:
                raise
            await _answer_413(send, str(exc.detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _answer_413(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # The unread rest of the body is not wanted: the server closes the connection after this.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _has_secure(cookie: bytes) -> bool:
    return any(part.strip().lower() == b"secure" for part in cookie.split(b";")[1:])


class SecureCookieMiddleware:
    """Adds ``Secure`` to every cookie set on a request that came over HTTPS (``scope['scheme']``,
    which uvicorn takes from X-Forwarded-Proto of a trusted proxy); ``FASTLIMS_SECURE_COOKIES``
    marks them on every request (the session middleware's ``https_only``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secure_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; secure")
                    if name.lower() == b"set-cookie" and not _has_secure(value)
                    else (name, value)
                    for name, value in message.get("headers", ())
                ]
            await send(message)

        await self.app(scope, receive, secure_send)
