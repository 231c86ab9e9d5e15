"""TLS and mutual TLS on the gRPC port, with certificates made for the test by a test CA."""

import asyncio
import datetime
import ipaddress

import grpc
import pytest
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.grpc.authorization import Gate
from surgedesk.adapters.grpc.limits import Limits
from surgedesk.adapters.grpc.server import build_server
from surgedesk.adapters.grpc.tls import channel_credentials, server_credentials
from surgedesk.adapters.identity.tokens import TokenVerifier
from surgedesk.engine.errors import InvalidArgument
from surgedesk.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.helpers import SECRET, bearer


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, issuer_key, *, ca=False, server=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test ca", "test ca", ca_key, ca_key, ca=True)
    files = {"ca": ca}
    for name, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        files[name] = _cert(name, "test ca", key, ca_key, server=server)
        (d / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    for name, cert in files.items():
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d


async def _serve(url, credentials):
    desk = Desk(GatewayActors(url), await GatewayDispatcher(url).start(), aioredis.Redis.from_url(url))
    server, port = await build_server(desk, "127.0.0.1:0", Gate(TokenVerifier(SECRET),
                                                                Limits.unlimited()),
                                      credentials=credentials)
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _stats(channel):
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    return await asyncio.wait_for(stub.GetQueueStats(admin_pb2.GetQueueStatsRequest(),
                                                     metadata=bearer("admin", "ops"),
                                                     timeout=5), 10)


def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext(redis_url, run, pki):
    async def scenario():
        server, address = await _serve(redis_url, server_credentials(
            str(pki / "server.pem"), str(pki / "server.key")))
        try:
            async with grpc.aio.secure_channel(address, channel_credentials(
                    str(pki / "ca.pem"))) as secure:
                assert (await _stats(secure)).waiting == 0
            async with grpc.aio.insecure_channel(address) as plain:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await _stats(plain)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)

    run(scenario())


def test_mutual_tls_requires_a_client_certificate_from_the_ca(redis_url, run, pki):
    async def scenario():
        server, address = await _serve(redis_url, server_credentials(
            str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem")))
        try:
            async with grpc.aio.secure_channel(address, channel_credentials(
                    str(pki / "ca.pem"), str(pki / "client.pem"),
                    str(pki / "client.key"))) as mutual:
                assert (await _stats(mutual)).waiting == 0
            async with grpc.aio.secure_channel(address, channel_credentials(
                    str(pki / "ca.pem"))) as anonymous:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await _stats(anonymous)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)

    run(scenario())


def test_certificate_files_are_checked_and_named(tmp_path, pki):
    with pytest.raises(InvalidArgument) as missing:
        server_credentials(str(tmp_path / "nope.pem"), str(pki / "server.key"))
    assert missing.value.field == "tls-cert"
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidArgument) as junk:
        server_credentials(str(pki / "server.pem"), str(tmp_path / "junk.pem"))
    assert junk.value.field == "tls-key"
