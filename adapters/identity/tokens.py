"""Bearer tokens: JWTs (RFC 7519), verified with PyJWT.

Two kinds of token are accepted:

* **The deployment's own** (the zero-configuration default): HS256, signed with the
  deployment's secret (:mod:`surgedesk.adapters.identity.secret_store`); ``surgedesk token``
  mints them, and any JWT library can, with the same secret.
* **An identity provider's**, when the desk file's ``[identity]`` table names a ``jwks``
  (:class:`IdentityConfig`): RS256, ES256 (or another asymmetric algorithm listed in
  ``algorithms``), verified against the provider's published keys by the token's ``kid``
  (:mod:`surgedesk.adapters.identity.jwks`: rotation needs no restart), with ``iss`` and
  ``aud`` checked when configured. ``secret_tokens = false`` then refuses the HS256 kind.

Either way a token names a role (the claim ``role`` or the one ``role_claim`` names:
customer, agent, service, admin), a subject (``sub``: the customer or agent id; for service
and admin the name of the frontend or person) and an expiry (``exp``). ``alg: none`` and any
algorithm not configured are refused (no algorithm confusion: HS256 only with the secret, the
others only with a JWKS key). Time comes from the caller (``now_s``): ``exp`` and ``nbf`` are
checked against it with :data:`LEEWAY_S`.

Cost: one HMAC-SHA256, or one RSA / ECDSA verification, per new token; :class:`TokenVerifier`
keeps the last few thousand verified tokens so a busy frontend's token is checked once (expiry
is still checked on every call, and the tokens of a key set that changed are checked again).
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from surgedesk.adapters.identity.jwks import KeySet
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
    not_before_s: float = 0.0


ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")


@dataclass(frozen=True)
class IdentityConfig:
    """The desk file's ``[identity]`` table."""

    jwks: str = ""            # a JWKS file or URL; empty: only the deployment's own tokens
    issuer: str = ""          # the identity provider's tokens must carry this ``iss``
    audience: str = ""        # ... and this ``aud``
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    role_claim: str = "role"  # the claim that names the role
    refresh_s: float = 300.0  # the JWKS is loaded again this often (and on an unknown kid)
    secret_tokens: bool = True  # accept HS256 tokens signed with the deployment's secret

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> IdentityConfig:
        known = {f for f in cls.__dataclass_fields__}
        for key in table:
            if key not in known:
                raise InvalidArgument(f"identity.{key}",
                                      f"unknown key; expected {', '.join(sorted(known))}")
        values = dict(table)
        for key in ("jwks", "issuer", "audience", "role_claim"):
            if key in values and not isinstance(values[key], str):
                raise InvalidArgument(f"identity.{key}", "must be a string")
        if "algorithms" in values:
            algorithms = values["algorithms"]
            if (not isinstance(algorithms, list) or not algorithms
                    or any(a not in ASYMMETRIC for a in algorithms)):
                raise InvalidArgument("identity.algorithms",
                                      f"must be a list of {', '.join(ASYMMETRIC)}")
            values["algorithms"] = tuple(algorithms)
        if "refresh_s" in values and not (isinstance(values["refresh_s"], int | float)
                                          and values["refresh_s"] > 0):
            raise InvalidArgument("identity.refresh_s", "must be a number of seconds > 0")
        if "secret_tokens" in values and not isinstance(values["secret_tokens"], bool):
            raise InvalidArgument("identity.secret_tokens", "must be true or false")
        config = cls(**values)
        if not config.jwks and not config.secret_tokens:
            raise InvalidArgument("identity.secret_tokens",
                                  "false needs a jwks: no token could be verified")
        return config


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidArgument("secret", f"must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def mint(secret: bytes, role: str, subject: str, now_s: float, ttl_s: float) -> str:
    """A token for ``subject`` in ``role``, valid from ``now_s`` for ``ttl_s`` seconds, signed
    with the deployment's secret (HS256)."""
    if role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    if not subject or len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
        raise InvalidArgument("subject", f"must be 1..{MAX_SUBJECT_CHARS} printable characters")
    if not 0 < ttl_s <= 366 * 86400:
        raise InvalidArgument("ttl", "must be in (0, 366 days]")
    return jwt.encode({"sub": subject, "role": role, "iat": int(now_s),
                       "exp": int(now_s + ttl_s), "iss": "surgedesk"},
                      check_secret(secret), algorithm="HS256")


def bearer_metadata(secret: bytes, role: str, subject: str,
                    ttl_s: float = 3600.0) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying a fresh token: what a client of the engine sends."""
    return (("authorization", f"Bearer {mint(secret, role, subject, time.time(), ttl_s)}"),)


_NOT_A_TOKEN = "the bearer token is not a signed surgedesk token"
# Time claims are checked against the caller's clock (now_s), not PyJWT's.
_OPTIONS: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                 "verify_aud": False, "require": ["sub", "exp"]}


@dataclass
class TokenVerifier:
    """Checks bearer tokens, remembering recently verified ones.

    ``verify`` is O(1) for a remembered token (a dict lookup and the expiry check) and one
    signature check otherwise; the memory is bounded by ``remember`` entries (LRU). With a
    :class:`IdentityConfig` naming a JWKS, the identity provider's tokens are accepted too.
    """

    secret: bytes
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    remember: int = 4096
    keys: KeySet | None = None  # made from identity.jwks if not given

    def __post_init__(self) -> None:
        check_secret(self.secret)
        if self.keys is None and self.identity.jwks:
            self.keys = KeySet(self.identity.jwks, self.identity.refresh_s)
        self._known: OrderedDict[str, Claims] = OrderedDict()
        self._keys_version = self.keys.version if self.keys is not None else 0

    def verify(self, token: str, now_s: float) -> Claims:
        if self.keys is not None and self.keys.version != self._keys_version:
            self._known.clear()  # a key withdrawn: its tokens are checked again
            self._keys_version = self.keys.version
        claims = self._known.get(token)
        if claims is None:
            claims = self._claims(token)
            self._known[token] = claims
            if len(self._known) > self.remember:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(token)
        if now_s > claims.expires_s + LEEWAY_S:
            raise Unauthenticated("the bearer token has expired; mint a new one")
        if claims.not_before_s and now_s < claims.not_before_s - LEEWAY_S:
            raise Unauthenticated("the bearer token is not valid yet (nbf)")
        return claims

    def _claims(self, token: str) -> Claims:
        """The signed claims of ``token``, without the time checks. Raises Unauthenticated."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2 or not token.isascii():
            raise Unauthenticated(_NOT_A_TOKEN)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated(_NOT_A_TOKEN) from None
        alg = header.get("alg")
        try:
            if alg == "HS256" and self.identity.secret_tokens:
                payload = jwt.decode(token, self.secret, algorithms=["HS256"], options=_OPTIONS)
                role_claim = "role"
            elif self.keys is not None and alg in self.identity.algorithms:
                payload = self._provider_claims(token, header, alg)
                role_claim = self.identity.role_claim
            else:
                accepted = [*(["HS256"] if self.identity.secret_tokens else []),
                            *(self.identity.algorithms if self.keys is not None else [])]
                raise Unauthenticated(f"the bearer token must be signed with "
                                      f"{' or '.join(accepted)}")
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the bearer token's signature does not match this "
                                  "deployment's keys") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the bearer token's issuer (iss) is not the configured "
                                  "identity provider") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the bearer token is not meant for this desk (aud)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the bearer token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated(_NOT_A_TOKEN) from None
        try:
            role, subject = payload[role_claim], payload["sub"]
            expires, issued = float(payload["exp"]), float(payload.get("iat", 0))
            not_before = float(payload.get("nbf", 0))
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("the bearer token's claims are malformed") from None
        if role not in ROLES or not isinstance(subject, str) or not subject:
            raise Unauthenticated("the bearer token names no known role and subject")
        if len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
            raise Unauthenticated(f"the bearer token's subject must be 1..{MAX_SUBJECT_CHARS} "
                                  "printable characters")
        return Claims(role, subject, expires, issued, not_before)

    def _provider_claims(self, token: str, header: dict[str, Any], alg: str) -> dict[str, Any]:
        assert self.keys is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the bearer token names no signing key (kid)")
        key = self.keys.key(kid)
        if key is None:
            raise Unauthenticated(f"the bearer token is signed by key {kid[:64]!r}, which the "
                                  "identity provider does not publish")
        options: Any = dict(_OPTIONS)
        if self.identity.audience:
            options["require"] = [*options["require"], "aud"]
            options["verify_aud"] = True
        if self.identity.issuer:
            options["require"] = [*options["require"], "iss"]
        payload: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=[alg], options=options,
            audience=self.identity.audience or None, issuer=self.identity.issuer or None)
        return payload
