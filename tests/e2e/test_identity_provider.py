"""``surgedesk serve`` trusting an identity provider, as a deployment configures it: the desk
file's ``[identity]`` table names the provider's JWKS URL, issuer and audience. Its ES256 tokens
are accepted, the deployment's own HS256 tokens still are, and the provider rotates its key in
the middle of the run with no restart of the engine."""

import os
import subprocess
import sys
import time
from importlib import resources

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from surgedesk.v1 import admin_pb2, admin_pb2_grpc, agent_pb2, agent_pb2_grpc, common_pb2
from tests.e2e.helpers import cli_token, free_port
from tests.identity_provider import AUDIENCE, ISSUER, Provider, SigningKey

pytestmark = pytest.mark.slow


def call(stub_method, request, token, attempts=10):
    """One call with ``token``, retried after UNAVAILABLE as its RetryInfo says."""
    for _ in range(attempts):
        try:
            return stub_method(request, metadata=(("authorization", f"Bearer {token}"),),
                               timeout=10)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(retry_delay_s(exc))
    raise AssertionError("still unavailable")


def retry_delay_s(exc: grpc.RpcError) -> float:
    status = rpc_status.from_call(exc)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError(f"UNAVAILABLE without RetryInfo: {exc.details()}")


def test_provider_tokens_are_trusted_and_a_key_rotation_needs_no_restart(tmp_path):
    first, second = SigningKey("2026-12-a"), SigningKey("2026-12-b", "RS256")
    provider = Provider(tmp_path, first)
    desk = resources.files("surgedesk.adapters").joinpath("sample_desk.toml").read_text()
    config = tmp_path / "desk.toml"
    config.write_text(desk.replace("[routing]", f'''[identity]
jwks = "{provider.url}"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
algorithms = ["ES256", "RS256"]

[routing]''', 1))
    port, data = free_port(), tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--port", str(port), "--data-dir",
         str(data), "--config", str(config), "--metrics-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving on" in line, line + (proc.stdout.read() if proc.poll() else "")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        agents = agent_pb2_grpc.AgentServiceStub(channel)
        stats = admin_pb2.GetQueueStatsRequest()

        call(admin.GetQueueStats, stats, first.token("admin", "ops"))
        online = agent_pb2.SetPresenceRequest(agent_id="ann", presence=common_pb2.PRESENCE_ONLINE)
        assert call(agents.SetPresence, online, first.token("agent", "ann")).agent_id == "ann"
        call(admin.GetQueueStats, stats, cli_token(data, "admin", "ops"))  # the secret's own

        for token, problem in [(first.token("admin", "ops", audience="billing"), "aud"),
                               (first.token("admin", "ops", issuer="https://evil"), "issuer"),
                               (SigningKey("2026-12-a").token("admin", "ops"), "signature")]:
            with pytest.raises(grpc.RpcError) as refused:
                call(admin.GetQueueStats, stats, token)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert problem in refused.value.details()

        provider.publish(second)  # rotated: the new key published, the old one withdrawn
        assert call(agents.SetPresence, online, second.token("agent", "ann")).agent_id == "ann"
        with pytest.raises(grpc.RpcError) as refused:
            call(admin.GetQueueStats, stats, first.token("admin", "ops"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert proc.poll() is None  # the same process throughout
    finally:
        proc.terminate()
        proc.wait(30)
        provider.close()
