"""Who may do what over HTTP: the token and the CSRF guard.

* The server has a token (``--ui-token``, else a random one it prints). Every state-changing request (a POST)
  needs it: as ``Authorization: Bearer <token>`` (what :class:`aion.Client` sends), or as the ``aion_token``
  cookie the browser got by opening a page once with ``?token=<token>``.
* A POST authenticated by the cookie must also carry the ``X-Aion-CSRF`` header equal to the ``aion_csrf``
  cookie (double submit: a page of another site can neither read the cookie nor set the header without a CORS
  preflight, which this server never grants). A POST whose ``Origin`` is not this server is refused outright.
* Bound to a loopback address, reading needs no token; bound elsewhere (which needs an explicit token or prints
  the generated one), reading needs it too.
* Read-only (``aion ui``), every POST is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from aion.errors import ForbiddenError, UnauthorizedError

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "TOKEN_COOKIE", "Security", "is_loopback", "new_token"]

TOKEN_COOKIE = "aion_token"
CSRF_COOKIE = "aion_csrf"
CSRF_HEADER = "X-Aion-CSRF"


def new_token() -> str:
    """A random token (32 bytes of entropy, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and every loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Security:
    """The rules of one server."""

    token: str
    #: Reading needs the token too (the server is bound beyond loopback).
    token_for_reads: bool
    read_only: bool

    def authenticated(self, request: Request) -> str | None:
        """How the request proves the token (``"header"`` or ``"cookie"``), or ``None``."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return "header" if self._is_token(header[7:].strip()) else None
        return "cookie" if self._is_token(request.cookies.get(TOKEN_COOKIE, "")) else None

    def _is_token(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def check_read(self, request: Request) -> None:
        """Refuse a reading request without the token when reads need it."""
        if self.token_for_reads and self.authenticated(request) is None:
            raise UnauthorizedError("this server needs its token (Authorization: Bearer <token>, or ?token= once)")

    def check_write(self, request: Request) -> None:
        """Refuse a state-changing request: read-only, another origin, no token, no CSRF header."""
        if self.read_only:
            raise ForbiddenError("the server is read-only (aion ui): nothing can be changed through it")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise ForbiddenError(f"a request from another origin ({origin}) may not change anything")
        how = self.authenticated(request)
        if how is None:
            raise UnauthorizedError(
                "a state-changing request needs the server's token (Authorization: Bearer <token>, or ?token= once)"
            )
        if how == "cookie":
            cookie = request.cookies.get(CSRF_COOKIE, "")
            header = request.headers.get(CSRF_HEADER, "")
            if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
                raise ForbiddenError(f"the {CSRF_HEADER} header is missing or does not match the CSRF cookie")
