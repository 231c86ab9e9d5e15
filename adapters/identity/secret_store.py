"""The secret that signs the deployment's tokens: where ``serve`` and ``token`` both find it.

In order: the ``SURGEDESK_TOKEN_SECRET`` environment variable (a real deployment's secret
manager sets it for every gateway), a file named by ``--secret-file``, or ``token-secret`` in
the data directory -- created on first use with 32 random bytes and mode 0600, so that the
embedded ``surgedesk serve`` and ``surgedesk token`` in the same directory agree without any
setup.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from surgedesk.adapters.identity.tokens import MIN_SECRET_BYTES
from surgedesk.engine.errors import InvalidArgument

ENV_VAR = "SURGEDESK_TOKEN_SECRET"
FILE_NAME = "token-secret"


def load_secret(data_dir: str | Path, secret_file: str | None = None) -> bytes:
    value = os.environ.get(ENV_VAR)
    if value:
        return _checked(value.strip().encode(), ENV_VAR)
    if secret_file:
        try:
            return _checked(Path(secret_file).read_bytes().strip(), "secret-file")
        except OSError as exc:
            raise InvalidArgument("secret-file", f"cannot read {secret_file}: "
                                                 f"{exc.strerror}") from None
    path = Path(data_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _checked(path.read_bytes().strip(), str(path))
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return _checked(path.read_bytes().strip(), str(path))


def _checked(secret: bytes, where: str) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidArgument(where, f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret
