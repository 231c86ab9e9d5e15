"""A stand-in identity provider for tests: signing keys (ES256, RS256) and their JWKS, published
as a file or over HTTP on loopback, rotated at will -- what Keycloak, Auth0 or Okta publish at
``/.well-known/jwks.json``."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/realms/desk"
AUDIENCE = "surgedesk"


class SigningKey:
    def __init__(self, kid: str, alg: str = "ES256") -> None:
        self.kid, self.alg = kid, alg
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk.update(kid=kid, alg=alg, use="sig")

    def token(self, role: str, subject: str, *, ttl_s: float = 600.0, issuer: str = ISSUER,
              audience: str = AUDIENCE, **claims: object) -> str:
        now = int(time.time())
        payload = {"sub": subject, "role": role, "iat": now, "exp": now + int(ttl_s),
                   "iss": issuer, "aud": audience, **claims}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers={"kid": self.kid})


class Provider:
    """The published key set: a file (``path``) and the same document over HTTP (``url``)."""

    def __init__(self, directory: Path, *keys: SigningKey) -> None:
        self.path = directory / "jwks.json"
        self._document = b""
        self.publish(*keys)
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = provider._document
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def publish(self, *keys: SigningKey) -> None:
        self._document = json.dumps({"keys": [k.jwk for k in keys]}).encode()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(self._document)
        tmp.replace(self.path)  # atomically, as a config manager would

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
