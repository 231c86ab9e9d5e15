"""An identity provider's signing keys (a JWKS, RFC 7517), kept current without a restart.

Who runs this: every gateway, through :class:`~surgedesk.adapters.identity.tokens.TokenVerifier`,
when the desk file's ``[identity]`` table names a ``jwks`` (a file path, or an ``https://`` /
``http://`` URL such as an identity provider's ``.../.well-known/jwks.json``).

How it works: the keys are parsed by PyJWT (``PyJWKSet``) into a dict ``kid -> key``;
:meth:`KeySet.key` is a dict lookup on the call's path. The set is loaded again every
``refresh_s`` and whenever a token names a ``kid`` the set does not hold (an identity provider
that rotates publishes the new key and starts signing with it), at most once per
``min_refresh_s`` so that tokens with made-up ``kid`` values cannot make the gateway fetch in
a loop. A file is read on the event loop (a stat and a small read); a URL is fetched on a
thread, never on the event loop. A ``kid`` is declared unknown (UNAUTHENTICATED) only once a
load begun after it was first named has not found it; until then the call is refused with
UNAVAILABLE (``Recovering``, with the time to wait), and its retry finds the key.
A fetch that fails keeps the keys held (an identity provider away for a moment must not log
everyone out) and is counted in :attr:`KeySet.failures`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from surgedesk.engine.errors import InvalidArgument, Recovering

MAX_JWKS_BYTES = 1 << 20


def parse(document: bytes | str, where: str) -> dict[str, Any]:
    """``kid -> key`` from a JWKS document. Keys without a ``kid`` or of an unsupported type
    are skipped (PyJWT's rule); a document with no usable key is refused, naming ``where``."""
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(document))
    except (ValueError, TypeError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
        raise InvalidArgument("identity.jwks", f"{where}: not a usable JWKS ({exc})") from None
    out = {k.key_id: k for k in keys.keys if k.key_id}
    if not out:
        raise InvalidArgument("identity.jwks", f"{where}: no key with a 'kid'")
    return out


class KeySet:
    """The keys of one JWKS source, refreshed as the module docstring says."""

    def __init__(self, source: str, refresh_s: float = 300.0, min_refresh_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, fetch_timeout_s: float = 5.0
                 ) -> None:
        self.source = source
        self.refresh_s, self.min_refresh_s = refresh_s, min_refresh_s
        self.failures = 0
        self._clock = clock
        self._timeout = fetch_timeout_s
        self._url = source.startswith(("https://", "http://"))
        self._lock = threading.Lock()
        self._fetching = False
        self._stamp: tuple[float, int] | None = None  # a file's (mtime, size) when read
        self._keys: dict[str, Any] = parse(self._read(), source)  # refused at start if bad
        # when the last load that finished began; when the last one was started
        self._looked_at = self._tried_at = clock()
        self._asked: dict[str, float] = {}  # unknown kid -> when first asked about
        self.version = 1  # bumped whenever the keys change (the verifier forgets tokens then)

    def key(self, kid: str) -> Any:
        """The key named ``kid`` (a ``jwt.PyJWK``), or None if the provider does not publish
        it: a load begun after the first call that named it did not find it. Until such a
        load has been made, raises Recovering with the time to wait."""
        now = self._clock()
        if now - self._looked_at >= self.refresh_s:
            self._refresh(now)
        found = self._keys.get(kid)
        if found is not None:
            return found
        asked = self._asked.get(kid)
        if asked is None:
            if len(self._asked) >= 1024:
                self._asked.clear()
            asked = self._asked[kid] = now
        if self._looked_at >= asked:
            return None  # looked for since it was asked about: not published
        if now - self._tried_at >= self.min_refresh_s:
            self._refresh(now)
            found = self._keys.get(kid)
            if found is not None or self._looked_at >= asked:
                return found
        wait = max(0.1, self._tried_at + self.min_refresh_s - now) if not self._fetching else 0.2
        raise Recovering(f"the identity provider's keys are loaded again for key {kid[:64]!r}; "
                         "retry", retry_after_s=wait)

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        if not self._url:
            self._reload_file(now)
            return
        with self._lock:
            if self._fetching:
                return
            self._fetching = True
        threading.Thread(target=self._fetch, args=(now,), name="jwks-fetch", daemon=True).start()

    def _reload_file(self, began: float) -> None:
        try:
            st = os.stat(self.source)
            if (st.st_mtime, st.st_size) != self._stamp:
                self._replace(parse(self._read(), self.source))
        except (OSError, InvalidArgument):
            self.failures += 1
        self._looked_at = began

    def _fetch(self, began: float) -> None:
        try:
            self._replace(parse(self._read(), self.source))
        except (OSError, InvalidArgument, ValueError):
            self.failures += 1
        finally:
            self._looked_at = began
            self._fetching = False

    def _replace(self, keys: dict[str, Any]) -> None:
        if keys.keys() != self._keys.keys() or any(
                keys[k]._jwk_data != self._keys[k]._jwk_data for k in keys):
            self._keys = keys
            self.version += 1

    def _read(self) -> bytes:
        if self._url:
            request = urllib.request.Request(self.source, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310
                return bytes(reply.read(MAX_JWKS_BYTES))
        try:
            path = Path(self.source)
            st = path.stat()
            self._stamp = (st.st_mtime, st.st_size)
            return path.read_bytes()[:MAX_JWKS_BYTES]
        except OSError as exc:
            raise InvalidArgument("identity.jwks", f"cannot read {self.source}: "
                                                   f"{exc.strerror}") from None
