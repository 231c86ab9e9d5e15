"""A gateway on loopback for end-to-end tests, built as a gateway builds itself, with its duties.

Every call needs a bearer token. The test channel adds one when a call carries none: a
``service`` token for CustomerService (a frontend acting for the customer the request names),
an ``agent`` token for the ``agent_id`` an AgentService request names, ``admin`` for
AdminService. Tests of identity pass explicit tokens (``bearer``, ``as_agent``).
"""

import asyncio
import collections
import contextlib
import socket
import subprocess
import sys
import time

import grpc

from surgedesk.adapters.desk.catalogue import SkillProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.grpc.authorization import Gate
from surgedesk.adapters.grpc.limits import Limits
from surgedesk.adapters.grpc.server import build_server
from surgedesk.adapters.identity.tokens import TokenVerifier, mint
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.engine.policies import policy_named
from surgedesk.engine.service_rules import ServiceRules

SECRET = b"end-to-end-tests-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(role, subject, ttl_s=3600.0, secret=SECRET):
    return mint(secret, role, subject, time.time(), ttl_s)


def bearer(role, subject, **extra):
    """Call metadata with a token for ``subject`` in ``role`` (and any extra metadata)."""
    return (("authorization", f"Bearer {token(role, subject)}"), *extra.items())


def as_agent(agent_id):
    return bearer("agent", agent_id)


def _default_identity(method, request):
    if isinstance(method, bytes):
        method = method.decode()
    if "/surgedesk.v1.AgentService/" in method:
        return bearer("agent", getattr(request, "agent_id", "") or "nobody")
    if "/surgedesk.v1.AdminService/" in method:
        return bearer("admin", "ops")
    return bearer("service", "web-frontend")


def _with_default_identity(details, request):
    metadata = list(details.metadata or ())
    if not any(k == "authorization" for k, _ in metadata):
        metadata.extend(_default_identity(details.method, request))
    return grpc.aio.ClientCallDetails(details.method, details.timeout,
                                      grpc.aio.Metadata(*metadata), details.credentials,
                                      details.wait_for_ready)


# grpc.aio files an interceptor under its first matching kind only: one class per kind.
class _DefaultIdentityUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(_with_default_identity(details, request), request)


class _DefaultIdentityStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(_with_default_identity(details, request), request)


class _Details(collections.namedtuple("_Details", "method timeout metadata credentials "
                                                  "wait_for_ready compression"),
               grpc.ClientCallDetails):
    pass


class _SyncToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token_text):
        self.header = ("authorization", f"Bearer {token_text}")

    def _details(self, d):
        metadata = list(d.metadata or ())
        if not any(k == "authorization" for k, _ in metadata):
            metadata.append(self.header)
        return _Details(d.method, d.timeout, metadata, d.credentials, d.wait_for_ready,
                        getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


def with_token(channel, token_text):
    """A blocking channel whose calls carry ``token_text`` unless they bring their own."""
    return grpc.intercept_channel(channel, _SyncToken(token_text))


def gateway_channel(address):
    """A channel to a test gateway that adds the default identity to calls without one."""
    return grpc.aio.insecure_channel(address, interceptors=[_DefaultIdentityUnary(), _DefaultIdentityStream()])


CATALOGUE = ("presale", "aftersale", "returns", "billing", "vip")


@contextlib.asynccontextmanager
async def served(url, *, rules=None, policy="strict", duties_s=None,
                 with_desk=False, limits=None, estimator=None, archive=None):
    """A gateway on loopback and a channel to it, both closed afterwards. With ``duties_s`` the
    background duties of ``surgedesk serve`` (dispatcher and ticket timers) run that often."""
    rules = rules or ServiceRules()
    # as a gateway wires it: one client, one connection, for the whole engine
    client = redis_client(url)
    shards = GatewayActors(url, rules=rules, client=client, archive=archive)
    dispatcher = await GatewayDispatcher(url, policy_named(policy), estimator=estimator,
                                         client=client).start()
    desk = Desk(shards, dispatcher, client, rules=rules, archive=archive)
    for skill in CATALOGUE:  # the desk's skills, as serve declares its desk file's
        await desk.catalogue.upsert_skill(SkillProfile(skill))
    gate = Gate(TokenVerifier(SECRET), limits or Limits.unlimited())
    server, port = await build_server(desk, "127.0.0.1:0", gate, watch_block_ms=100,
                                      estimate_every_s=0.1)
    await server.start()
    channel = gateway_channel(f"127.0.0.1:{port}")
    channel.target_address = f"127.0.0.1:{port}"  # for tests that need a channel without tokens

    async def duties():
        while True:
            await asyncio.sleep(duties_s)
            await desk.routing.tick()
            await desk.routing.run_timers()

    background = asyncio.create_task(duties()) if duties_s else None
    try:
        yield (channel, desk) if with_desk else channel
    finally:
        if background is not None:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
        await channel.close()
        await server.stop(None)
        await desk.shutdown()


def cli_token(data_dir, role, subject):
    """A token as a deployment mints it: ``surgedesk token`` with the engine's secret."""
    out = subprocess.run([sys.executable, "-m", "surgedesk", "token", "--role", role,
                          "--subject", subject, "--data-dir", str(data_dir)],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()
