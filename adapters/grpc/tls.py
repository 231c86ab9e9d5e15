"""TLS and mutual TLS for the gRPC port, from PEM files.

``serve --tls-cert F --tls-key F`` serves TLS; adding ``--tls-client-ca F`` requires every
client to present a certificate signed by that CA (mutual TLS). Bearer tokens are still
required: TLS says the connection is private and, with mTLS, which machine is calling; the
token says who the call is for.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from surgedesk.engine.errors import InvalidArgument


def _pem(field: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(field, f"cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise InvalidArgument(field, f"{path} is not a PEM file")
    return data


def server_credentials(cert_file: str, key_file: str,
                       client_ca_file: str | None = None) -> grpc.ServerCredentials:
    pair = (_pem("tls-key", key_file), _pem("tls-cert", cert_file))
    if client_ca_file is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials([pair], root_certificates=_pem("tls-client-ca",
                                                                      client_ca_file),
                                       require_client_auth=True)


def channel_credentials(ca_file: str, cert_file: str | None = None,
                        key_file: str | None = None) -> grpc.ChannelCredentials:
    """What a client needs: the server's CA and, for mutual TLS, its own certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=_pem("ca", ca_file),
        private_key=_pem("key", key_file) if key_file else None,
        certificate_chain=_pem("cert", cert_file) if cert_file else None)
