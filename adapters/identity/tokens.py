"""Bearer tokens: compact JWTs (RFC 7519) signed with HMAC-SHA256 by the deployment's secret.

A token names a ``role`` (customer, agent, service, admin), a subject (``sub``: the customer
or agent id; for service and admin the name of the frontend or person) and an expiry
(``exp``). The format is plain JWT so that any JWT library can mint tokens for surgedesk with
the same secret; only ``alg: HS256`` is accepted (never ``none``), and the signature is
compared in constant time. Time comes from the caller (``now_s``), so this module is pure.

Cost: one HMAC over a few hundred bytes per call; :class:`TokenVerifier` keeps the last few
thousand verified tokens so a busy frontend's token is checked once (expiry is still checked
on every call).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass

from surgedesk.engine.errors import InvalidArgument, Unauthenticated

ROLES = ("customer", "agent", "service", "admin")
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 128
MIN_SECRET_BYTES = 32
LEEWAY_S = 30.0  # clocks of the minting and the serving host may differ a little


@dataclass(frozen=True)
class Claims:
    role: str
    subject: str
    expires_s: float
    issued_s: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidArgument("secret", f"must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def mint(secret: bytes, role: str, subject: str, now_s: float, ttl_s: float) -> str:
    """A token for ``subject`` in ``role``, valid from ``now_s`` for ``ttl_s`` seconds."""
    if role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    if not subject or len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
        raise InvalidArgument("subject", f"must be 1..{MAX_SUBJECT_CHARS} printable characters")
    if not 0 < ttl_s <= 366 * 86400:
        raise InvalidArgument("ttl", "must be in (0, 366 days]")
    payload = _b64(json.dumps({"sub": subject, "role": role, "iat": int(now_s),
                               "exp": int(now_s + ttl_s), "iss": "surgedesk"},
                              separators=(",", ":")).encode())
    signing_input = f"{_HEADER}.{payload}".encode("ascii")
    signature = hmac.new(check_secret(secret), signing_input, hashlib.sha256).digest()
    return f"{_HEADER}.{payload}.{_b64(signature)}"


def bearer_metadata(secret: bytes, role: str, subject: str,
                    ttl_s: float = 3600.0) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying a fresh token: what a client of the engine sends."""
    return (("authorization", f"Bearer {mint(secret, role, subject, time.time(), ttl_s)}"),)


def _claims(secret: bytes, token: str) -> Claims:
    """The signed claims of ``token``, without the expiry check. Raises Unauthenticated."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2 or not token.isascii():
        raise Unauthenticated("the bearer token is not a signed surgedesk token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(_unb64(header_b64))
        signature = _unb64(signature_b64)
    except ValueError:
        raise Unauthenticated("the bearer token is not a signed surgedesk token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise Unauthenticated("the bearer token must be signed with HS256")
    expected = hmac.new(secret, f"{header_b64}.{payload_b64}".encode("ascii"),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise Unauthenticated("the bearer token's signature does not match this deployment")
    try:
        payload = json.loads(_unb64(payload_b64))
        role, subject = payload["role"], payload["sub"]
        expires, issued = float(payload["exp"]), float(payload.get("iat", 0))
    except (ValueError, KeyError, TypeError):
        raise Unauthenticated("the bearer token's claims are malformed") from None
    if role not in ROLES or not isinstance(subject, str) or not subject:
        raise Unauthenticated("the bearer token names no known role and subject")
    return Claims(role, subject, expires, issued)


class TokenVerifier:
    """Checks bearer tokens against one secret, remembering recently verified ones.

    ``verify`` is O(1) for a remembered token (a dict lookup and the expiry check) and one
    HMAC-SHA256 otherwise; the memory is bounded by ``remember`` entries (LRU).
    """

    def __init__(self, secret: bytes, remember: int = 4096) -> None:
        self._secret = check_secret(secret)
        self._known: OrderedDict[str, Claims] = OrderedDict()
        self._remember = remember

    def verify(self, token: str, now_s: float) -> Claims:
        claims = self._known.get(token)
        if claims is None:
            claims = _claims(self._secret, token)
            self._known[token] = claims
            if len(self._known) > self._remember:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(token)
        if now_s > claims.expires_s + LEEWAY_S:
            raise Unauthenticated("the bearer token has expired; mint a new one")
        return claims
