"""Whether this gateway should be sent calls: readiness while it serves, draining as it stops.

Who runs this: the ``surgedesk serve`` process, on its event loop.

* **Readiness.** The health service (``grpc.health.v1.Health``, every service name and ``""``)
  answers SERVING only while the gateway can do its work: Redis answers and the dispatcher
  answers (:meth:`surgedesk.adapters.desk.desk.Desk.readiness`). ``serve`` runs
  :meth:`Readiness.check` every second; a load balancer or a client's health checking stops
  sending calls to a gateway that is NOT_SERVING and sends them again once it recovers.
* **Draining** (SIGTERM: a rolling restart, a node going away). :meth:`Readiness.drain` sets
  NOT_SERVING for good, refuses every new call with UNAVAILABLE (clients following the
  published retry policy, ``docs/API.md``, retry on another gateway), ends every open watch
  with UNAVAILABLE so that its client resumes from its last cursor elsewhere, and stops the
  server at once with ``grace_s`` for the calls already in flight: gRPC closes the listening
  socket (new connections go to the other gateways on the port) and sends every client
  connection a GOAWAY, so a client's next call opens a connection elsewhere instead of being
  refused here; a call still running when the grace is over is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from grpc_health.v1 import health, health_pb2

from surgedesk.adapters.grpc.limits import Admission
from surgedesk.engine.errors import Draining

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """The health statuses of one gateway, and its drain."""

    def __init__(self, servicer: health.aio.HealthServicer, services: Iterable[str],
                 admission: Admission, probe: Callable[[], Awaitable[str]],
                 end_watches: Callable[[BaseException], None],
                 stop_server: Callable[[float | None], Awaitable[object]],
                 probe_timeout_s: float = 2.0) -> None:
        self.servicer = servicer
        self.services = (*services, "")
        self.admission = admission
        self.probe, self.end_watches = probe, end_watches
        self.stop_server = stop_server
        self.probe_timeout_s = probe_timeout_s
        self.serving: bool | None = None  # as last set; None before the first check
        self.reason = ""  # why not serving, as the last check found

    async def check(self) -> bool:
        """Probe the gateway's dependencies and set every status to match. True if serving."""
        if self.admission.draining:
            return False
        try:
            async with asyncio.timeout(self.probe_timeout_s):
                reason = await self.probe()
        except TimeoutError:
            reason = f"no answer within {self.probe_timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means not ready
            reason = f"{type(exc).__name__}: {exc}"
        await self._set(not reason)
        self.reason = reason
        return not reason

    async def drain(self, grace_s: float) -> bool:
        """Stop taking calls and let the ones in flight finish, for at most ``grace_s``; the
        server is stopped when this returns. True if every call in flight finished in time."""
        await self.servicer.enter_graceful_shutdown()
        self.serving = False
        self.admission.drain()
        self.end_watches(Draining("this gateway is shutting down; resume the watch from "
                                  "your last cursor (another gateway serves it)"))
        stopped = asyncio.ensure_future(self.stop_server(grace_s))
        try:
            async with asyncio.timeout(grace_s):
                await self.admission.idle()
            finished = True
        except TimeoutError:
            finished = False
        await stopped
        return finished

    async def _set(self, serving: bool) -> None:
        if serving == self.serving:
            return
        status = SERVING if serving else NOT_SERVING
        for name in self.services:
            await self.servicer.set(name, status)
        self.serving = serving
