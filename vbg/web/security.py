"""Request guard for the local web server: Host, Origin, token and body-size checks (ASGI)."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Largest request body accepted (a multipart upload with all its files), bytes.
MAX_BODY_BYTES = 64 * 1024 * 1024
# A batch upload may be larger: several photos in one request.
MAX_BATCH_BODY_BYTES = 256 * 1024 * 1024
# Paths allowed the larger cap: photo batches, live-mode video backgrounds.
BATCH_PATHS = ("/api/batch", "/api/studio/batches", "/api/live/backgrounds")
TOKEN_COOKIE = "vbg_token"
TOKEN_HEADER = "x-vbg-token"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host header values this server answers; None when bound beyond loopback (then the
    token protects it and any name that reaches it is accepted)."""
    if not is_loopback(host):
        return None
    names = {*LOOPBACK_NAMES, host if ":" not in host else f"[{host.strip('[]')}]"}
    return frozenset(f"{name}:{port}" for name in names)


def error_body(message: str) -> bytes:
    """The JSON error body every refusal carries."""
    return json.dumps({"error": message}).encode()


class RequestGuard:
    """ASGI middleware: refuses foreign Host (DNS rebinding) and Origin (cross-site) headers,
    requests without the token when one is set, and bodies over the size cap (413)."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, token: str | None = None,
                 max_body: int = MAX_BODY_BYTES, max_batch_body: int = MAX_BATCH_BODY_BYTES
                 ) -> None:
        self.app = app
        self.hosts = allowed_hosts(host, port)
        self.port = port
        self.token = token
        self.max_body = max_body
        self.max_batch_body = max_batch_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with its body counted."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await self._refuse(scope, receive, send, status, message)
            return
        cookie = self._token_cookie(scope, headers)
        limit = self.max_batch_body if scope.get("path", "").startswith(BATCH_PATHS) \
            else self.max_body
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await self._refuse(scope, receive, send, 413, too_large(int(length), limit))
            return
        counted_receive, guarded_send, state = self._counted(receive, send, limit, cookie)
        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["replaced"]:  # the app gave up without answering
            await guarded_send({"type": "http.response.start", "status": 413, "headers": []})

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request must be refused, else None."""
        host = headers.get("host", "").lower()
        if not host:
            return 400, "missing Host header"
        hosts = self.hosts
        if self.port == 0 and hosts is not None:  # bound to a free port: the socket's own
            port = (scope.get("server") or ("", 0))[1]
            hosts = frozenset(h.rsplit(":", 1)[0] + f":{port}" for h in hosts)
        if hosts is not None and host not in hosts:
            return 421, (f"Host {host!r} is not this server: vbg answers only "
                         f"http://127.0.0.1:{self.port}/ (DNS-rebinding guard)")
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return 403, (f"cross-site request from Origin {origin!r} refused: vbg's page must "
                         "be opened from this server itself")
        site = headers.get("sec-fetch-site")
        if site == "cross-site" and (scope.get("method") not in ("GET", "HEAD")
                                     or headers.get("sec-fetch-mode") != "navigate"):
            return 403, "cross-site request refused"
        if self.token is not None and not self._has_token(scope, headers):
            return 401, ("this server needs its token: open http://HOST:PORT/?token=TOKEN or "
                         "send the header 'X-Vbg-Token: TOKEN'")
        return None

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        """The token from the header, Authorization: Bearer, the cookie or ?token=."""
        assert self.token is not None
        offered = [headers.get(TOKEN_HEADER, "")]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no token
                jar = SimpleCookie()
            if TOKEN_COOKIE in jar:
                offered.append(jar[TOKEN_COOKIE].value)
        offered += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered if o)

    def _token_cookie(self, scope: Scope, headers: dict[str, str]) -> bytes | None:
        """A Set-Cookie value when the token came in the query string (the page keeps it)."""
        if self.token is None or b"token=" not in scope.get("query_string", b""):
            return None
        return (f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict").encode()

    def _counted(self, receive: Receive, send: Send, limit: int, cookie: bytes | None
                 ) -> tuple[Receive, Send, dict[str, Any]]:
        """receive/send wrappers: a body growing past `limit` turns the response into 413."""
        state = {"received": 0, "over": False, "replaced": False}

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"] and message["type"].startswith("http.response"):
                if not state["replaced"]:
                    state["replaced"] = True
                    body = error_body(too_large(state["received"], limit))
                    await send({"type": "http.response.start", "status": 413,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                return
            if cookie is not None and message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        return counted_receive, guarded_send, state

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int,
                      message: str) -> None:
        """Answer with a JSON error (or close a websocket) without calling the app."""
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = error_body(message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def too_large(size: int, limit: int) -> str:
    """The 413 message."""
    return (f"upload too large: {size / 1e6:.1f} MB (limit {limit / 1e6:.0f} MB); send "
            "smaller files, or fewer per request")
