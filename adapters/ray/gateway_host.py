"""Gateways placed, supervised and restarted by Ray: ``surgedesk serve --hosting ray``.

Who runs this: the ``surgedesk serve`` process as the Ray driver and the gateways' supervisor
(:func:`supervise_on_ray`); each gateway in a :class:`GatewayHost` Ray actor on some node.

Ray places; Redis carries the requests. A :class:`GatewayHost` runs one gateway
(:class:`surgedesk.adapters.gateway.Gateway`, the same code ``serve`` runs in its own process)
on an event loop of its own in the actor's process: gRPC on the shared port (``SO_REUSEPORT``,
so several gateways on one node share it), its ticket and agent actors and its copy of the
dispatcher following the one routing log. No request crosses Ray: Ray's part is to place the
gateways (``SPREAD`` over the nodes, a CPU each), to restart one whose process or node dies
(``max_restarts=-1``: on another node when its node is gone) and to find them by name
(``gateway-0``, ``gateway-1``, ... in the namespace ``surgedesk``; detached, so a restarted
supervisor adopts the gateways still serving instead of starting others).

The supervisor reports every gateway's line as it starts and as Ray restarts it; on SIGHUP it
restarts the gateways one by one (drained, then placed again and serving before the next);
on SIGTERM or SIGINT it drains them all and removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import replace
from typing import Any

import ray

from surgedesk.adapters.gateway import Gateway, GatewayOptions, run_loop

NAMESPACE = "surgedesk"
START_TIMEOUT_S = 180.0  # a gateway placed on a busy node: a new worker process, imports, Redis


@ray.remote(max_restarts=-1)
class GatewayHost:
    """One gateway in this Ray actor's process, on a thread and event loop of its own (the
    actor's methods run on other threads: Ray calls never wait behind the gateway's work)."""

    def __init__(self, options: GatewayOptions, event_loop: str = "uvloop") -> None:
        node = ray.get_runtime_context().get_node_id()
        name = ray.get_runtime_context().get_actor_name() or "gateway"
        nice = normal_priority()  # before the gateway's thread starts: it inherits it
        self._options = replace(options, placed_by=f"{name} placed by Ray on node {node}"
                                                   f"{'' if nice == 0 else f', nice {nice}'}")
        self._started, self._ended = threading.Event(), threading.Event()
        self._line, self._error, self._finished, self._port = "", "", False, 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        threading.Thread(target=self._run, args=(event_loop,), name="gateway",
                         daemon=True).start()

    def _run(self, event_loop: str) -> None:
        try:
            self._finished = run_loop(self._main(), event_loop)
        except BaseException as exc:  # noqa: BLE001 - reported to the supervisor by ready()
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._started.set()
            self._ended.set()

    async def _main(self) -> bool:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        gateway = Gateway(self._options)
        self._line = await gateway.start()
        self._port = gateway.port
        self._started.set()
        return await gateway.serve(self._stop)

    def ready(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """The gateway's ``surgedesk serving on ...`` line once it serves."""
        self._started.wait(timeout_s)
        if self._error:
            raise RuntimeError(f"the gateway did not start: {self._error}")
        if not self._line:
            raise TimeoutError(f"the gateway did not start within {timeout_s:g} s")
        return self._line

    def serving(self) -> bool:
        """Whether the gateway is still running (not drained, not failed)."""
        return self._started.is_set() and not self._ended.is_set()

    def drain(self) -> bool:
        """Drain the gateway and stop it (the actor stays, idle, until removed). True if every
        call in flight finished within the grace."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._ended.wait(self._options.drain_grace_s + 30)
        return self._finished

    def pid(self) -> int:
        return os.getpid()

    def port(self) -> int:
        """The gRPC port the gateway serves on (0 before it serves)."""
        return self._port


def normal_priority() -> int:
    """Ask for the normal scheduling priority (niceness 0) for this thread and the threads it
    starts; return the niceness it has. Ray starts its workers at niceness 15
    (``RAY_worker_niceness``), below everything else on the node: a gateway serving customers
    there answers late whenever the node is busy (a big-sale surge on 2 cores: dispatch lag p99
    254 ms against 116 ms for the same gateways as plain processes). Raising the priority back
    needs the privilege to (root, or ``CAP_SYS_NICE``); without it the gateway stays where Ray
    put it and says so in its line -- start Ray with ``RAY_worker_niceness=0`` (what
    :func:`supervise_on_ray` does for the Ray it starts itself)."""
    with contextlib.suppress(OSError):  # not permitted: stays as it is
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # on Linux, this thread (and those it starts)
    return os.getpriority(os.PRIO_PROCESS, 0)


def place(index: int, options: GatewayOptions, event_loop: str, num_cpus: float) -> Any:
    """Gateway ``index``: the one of that name if it still serves (adopted), else a new one."""
    return GatewayHost.options(  # type: ignore[attr-defined]
        name=f"gateway-{index}", namespace=NAMESPACE, lifetime="detached",
        get_if_exists=True, scheduling_strategy="SPREAD", num_cpus=num_cpus,
        max_concurrency=4,  # ready, drain and the watcher's questions, never behind each other
    ).remote(options, event_loop)


def remove(handle: Any, timeout_s: float, name: str | None = None) -> None:
    """Drain a gateway and remove its actor for good (and wait until ``name`` is free)."""
    with contextlib.suppress(Exception):  # a gateway that cannot drain is removed all the same
        ray.get(handle.drain.remote(), timeout=timeout_s)
    with contextlib.suppress(Exception):  # already gone
        ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + timeout_s
    while name is not None and time.monotonic() < deadline:  # its name free for a successor
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)


def supervise_on_ray(args: Any) -> int:
    """Place ``args.gateways`` gateways with Ray and watch them until SIGTERM or SIGINT."""
    from surgedesk.adapters.gateways import shared_port
    from surgedesk.adapters.identity.secret_store import load_secret
    from surgedesk.adapters.redis.embedded import EmbeddedRedis
    from surgedesk.adapters.serve import gateway_options

    address = os.environ.get("RAY_ADDRESS") or None
    count = int(args.gateways)
    secret = load_secret(args.data_dir, args.secret_file)
    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:  # one machine: Ray's local cluster and an embedded Redis
        embedded = EmbeddedRedis(os.path.join(args.data_dir, "redis"),
                                 appendfsync=args.redis_fsync).start()
        redis_url = embedded.url
    if not ray.is_initialized():
        if not address:  # the local Ray this starts runs its workers at normal priority
            os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, namespace=NAMESPACE, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False,
                 num_cpus=None if address else max(count, os.cpu_count() or 2))
    port = shared_port(args.host, args.port)
    num_cpus = float(getattr(args, "gateway_cpus", 1.0))

    def options_of(index: int) -> GatewayOptions:
        return gateway_options(
            args, port=port, secret=secret, redis_url=redis_url, member=count > 1,
            metrics_port=args.metrics_port + index if args.metrics_port else 0)

    stopping: list[int] = []
    restarts: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGHUP, lambda signum, _frame: restarts.append(signum))
    handles = [place(i, options_of(i), args.event_loop, num_cpus) for i in range(count)]
    try:
        lines = ray.get([h.ready.remote() for h in handles], timeout=START_TIMEOUT_S + 30)
        for i, line in enumerate(lines):
            print(f"[gateway {i}] {line}", flush=True)
        pids = ", ".join(str(p) for p in ray.get([h.pid.remote() for h in handles]))
        print(f"surgedesk serving on {args.host}:{port} ({count} gateways placed by Ray "
              f"{address or 'local'}, pids {pids}; redis "
              f"{'embedded' if embedded else redis_url})", flush=True)
        watcher = Watcher(handles)
        while not stopping:
            time.sleep(0.5)
            if restarts:
                restarts.clear()
                print(f"surgedesk: rolling restart of {count} gateways", flush=True)
                for i in range(count):
                    if stopping:
                        break
                    remove(handles[i], args.drain_grace_s + 30, f"gateway-{i}")
                    handles[i] = place(i, options_of(i), args.event_loop, num_cpus)
                    line = ray.get(handles[i].ready.remote(), timeout=START_TIMEOUT_S + 30)
                    print(f"surgedesk: gateway {i} restarted: {line}", flush=True)
                print("surgedesk: rolling restart done", flush=True)
                watcher = Watcher(handles)
            watcher.check()
    finally:
        for handle in handles:
            handle.drain.remote()
        for handle in handles:
            remove(handle, args.drain_grace_s + 30)
        if ray.is_initialized():
            ray.shutdown()
        if embedded is not None:
            embedded.stop()
        print("surgedesk stopped: every gateway drained and removed", flush=True)
    return 0


class Watcher:
    """Reports each gateway Ray restarts (a dead process, a lost node), once it serves again,
    and has Ray restart one whose gateway stopped on its own."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles
        self.pids: list[int | None] = [None] * len(handles)
        self.pending: list[Any] = [None] * len(handles)

    def check(self) -> None:
        for i, handle in enumerate(self.handles):
            if self.pending[i] is None:
                self.pending[i] = (handle.serving.remote(), handle.pid.remote())
            serving_ref, pid_ref = self.pending[i]
            ready, _ = ray.wait([serving_ref, pid_ref], num_returns=2, timeout=0)
            if len(ready) < 2:
                continue  # restarting, or busy: asked again once it answers
            self.pending[i] = None
            try:
                serving, pid = ray.get([serving_ref, pid_ref])
            except ray.exceptions.RayActorError:
                continue  # Ray is restarting it
            if self.pids[i] is not None and pid != self.pids[i] and serving:
                print(f"surgedesk: gateway {i} restarted by Ray (pid {pid}): "
                      f"{ray.get(handle.ready.remote())}", flush=True)
            if serving:
                self.pids[i] = pid
            elif self.pids[i] == pid:  # it stopped on its own: Ray starts it again
                print(f"surgedesk: gateway {i} stopped; restarting it", flush=True)
                ray.kill(handle, no_restart=False)
