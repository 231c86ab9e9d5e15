"""Where a StartConversation's CPU goes in the gateway: the same load against the gateway with
its layers added one at a time, each run next to the echo server.

    python -m surgedesk.benchmarks.gateway_cost [--seconds 8] [--concurrency 64] [--json out/gateway-cost.json]

The layers, each measured as CPU per call of the serving process (with in-process hosting:
the whole engine but Redis), Redis's CPU per call, and the rate:

* **echo** -- :func:`surgedesk.benchmarks.throughput.echo_server`: bytes in, the same bytes out.
* **servicer** -- the generated ``CustomerService`` servicer answering a fixed
  ``StartConversationResponse``: request and response (de)serialized, no engine code.
* **gate** -- plus the gateway's gate (bearer token, rate limits, admission) and the error
  mapping of every RPC (:func:`surgedesk.adapters.grpc.services.rpc`).
* **answer** -- the real ``StartConversation`` method, answer built from a ticket, with the
  desk replaced by one that answers a fixed ticket view at once.
* **answer+yield** -- the same, the desk yielding to the event loop once before it answers
  (a durable start suspends once: for the ticket's append, which carries its routing entry).
* **answer+redis** -- the same, the desk making one Redis round trip (``PING``).
* **durable** -- the real gateway of :mod:`surgedesk.benchmarks.throughput` (in-process hosting).

And, without gRPC at all, **desk alone**: ``Desk.start_conversation`` called by as many
concurrent callers in this process -- the engine's own CPU per durable start -- without an
archive and with one (SQLite, as the embedded default: each new customer's start reads it,
:meth:`surgedesk.adapters.desk.desk.Desk.start_conversation`), side by side
(``--desk-only`` runs just these two).

The difference between two neighbours is what that layer costs under this load. Rates and CPU
move with the machine's load; compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import grpc

from surgedesk.benchmarks import throughput as tp


def _canned_view() -> Any:
    from surgedesk.adapters.desk.desk import TicketView
    from surgedesk.engine.dispatcher import DispatcherCore
    from surgedesk.engine.events import TicketQueued
    from surgedesk.engine.ticket import OpenTicket, apply, open_ticket

    record: Any = None
    for event in open_ticket(OpenTicket("t-0123456789abcdef0123", "bench-1", "app", "presale",
                                        0, "hello"), 1.8e9):
        record = apply(record, event)
    core = DispatcherCore()
    core.handle(TicketQueued("t-0123456789abcdef0123", "presale", 0), 1.8e9)
    return TicketView(record, core.queue_status("t-0123456789abcdef0123", 1.8e9))


class _CannedDesk:
    """A desk that answers every start with the same queued ticket: at once, after yielding
    to the event loop once, or after one Redis round trip (``PING``), as a durable start
    waits once for Redis."""

    def __init__(self, wait: str = "", redis: Any = None) -> None:
        self.answer = _canned_view()
        self.wait, self.redis = wait, redis

    async def start_conversation(self, *args: Any, **kwargs: Any) -> Any:
        if self.wait == "yield":
            await asyncio.sleep(0)
        elif self.wait:
            await self.redis.ping()
        return self.answer


async def _layer_server(layer: str, redis_url: str = "") -> tuple[grpc.aio.Server, int]:
    from surgedesk.adapters.grpc.authorization import Gate
    from surgedesk.adapters.grpc.conversion import set_ticket
    from surgedesk.adapters.grpc.server import GenericRegistration
    from surgedesk.adapters.grpc.services import CustomerService, rpc
    from surgedesk.adapters.identity.tokens import TokenVerifier
    from surgedesk.adapters.redis.connect import redis_client
    from surgedesk.v1 import customer_pb2, customer_pb2_grpc

    wait = layer.partition("+")[2]
    desk = _CannedDesk(wait, redis_client(redis_url) if wait == "redis" else None)
    fixed = customer_pb2.StartConversationResponse()
    set_ticket(fixed.ticket, desk.answer.record, desk.answer.status)

    class Servicer(CustomerService):
        async def StartConversation(self, request: Any, context: Any) -> Any:  # noqa: N802
            return fixed

    class Gated(CustomerService):
        @rpc
        async def StartConversation(self, request: Any, context: Any,  # noqa: N802
                                    caller: Any) -> Any:
            self.gate.count_for(caller, caller.customer_named(request.customer_id))
            return fixed

    service = {"servicer": Servicer, "gate": Gated}.get(layer, CustomerService)
    server = grpc.aio.server()
    registration = GenericRegistration(server)  # registered as the gateway registers
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        service(desk, Gate(TokenVerifier(tp.BENCH_SECRET))),  # type: ignore[arg-type]
        registration)
    registration.finish()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


LAYERS = ("servicer", "gate", "answer", "answer+yield", "answer+redis", "durable")


async def desk_alone(seconds: float, concurrency: int, data_dir: str,
                     archived: bool = False) -> dict[str, Any]:
    """The durable start without gRPC: ``concurrency`` callers of ``Desk.start_conversation``
    in this process (in-process hosting, one Redis client), for ``seconds``; CPU per start of
    this process (its threads included: the archive's reads run on one) and of Redis, and the
    start's latency. ``archived``: with an archive (SQLite in ``data_dir``)."""
    import time

    from surgedesk.adapters.archive.store import ArchiveStore, archive_url, open_archive
    from surgedesk.adapters.desk.catalogue import SkillProfile
    from surgedesk.adapters.desk.desk import Desk
    from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
    from surgedesk.adapters.redis.connect import redis_client
    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    name = "desk-archive" if archived else "desk"
    redis_server = EmbeddedRedis(Path(data_dir) / name).start()
    store: ArchiveStore | None = (open_archive(archive_url(Path(data_dir) / name))
                                  if archived else None)
    try:
        client = redis_client(redis_server.url)
        dispatcher = await GatewayDispatcher(redis_server.url, client=client).start()
        desk = Desk(GatewayActors(redis_server.url, client=client, archive=store), dispatcher,
                    client, archive=store)
        await desk.catalogue.upsert_skill(SkillProfile("presale"))
        run_id = time.time_ns()
        starts = 0
        latencies: list[float] = []

        async def caller(c: int, until: float) -> None:
            nonlocal starts
            i = 0
            while time.perf_counter() < until:
                began = time.perf_counter()
                await desk.start_conversation(f"alone-{run_id}-{c}-{i}", "app", "presale", 0,
                                              "hello")
                latencies.append(time.perf_counter() - began)
                i += 1
                starts += 1

        await asyncio.gather(*[caller(c, time.perf_counter() + min(seconds, 1.0))
                               for c in range(concurrency)])  # warm up
        starts, latencies[:] = 0, []
        pid = redis_server.process.pid if redis_server.process else None
        cpu, redis_cpu, began = time.process_time(), tp._cpu_s_of(pid), time.perf_counter()
        await asyncio.gather(*[caller(c, began + seconds) for c in range(concurrency)])
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        latencies.sort()
        result: dict[str, Any] = {"requests": starts, "errors": 0, "per_s": starts / elapsed,
                                  "server_cpu_us": cpu / max(1, starts) * 1e6,
                                  "p50_ms": latencies[len(latencies) // 2] * 1e3,
                                  "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}
        after = tp._cpu_s_of(pid)
        if redis_cpu is not None and after is not None:
            result["redis_cpu_us"] = (after - redis_cpu) / max(1, starts) * 1e6
        await desk.shutdown()
        await dispatcher.service.stop()
        return result
    finally:
        if store is not None:
            store.close()
        redis_server.stop()


async def run_desk_alone(seconds: float, concurrency: int) -> dict[str, Any]:
    """The two desk-alone runs, without an archive and with one, in this process."""
    report: dict[str, Any] = {"seconds": seconds, "concurrency": concurrency}
    with tempfile.TemporaryDirectory() as data_dir:
        report["desk_alone"] = await desk_alone(seconds, concurrency, data_dir)
        report["desk_alone_archive"] = await desk_alone(seconds, concurrency, data_dir,
                                                        archived=True)
    return report


async def run(seconds: float, concurrency: int, warmup_s: float = 2.0) -> dict[str, Any]:
    from surgedesk.adapters.gateway import tune_gc

    tune_gc()  # as the gateway runs
    echo, echo_port = await tp.echo_server()
    echo_target = f"127.0.0.1:{echo_port}"
    report: dict[str, Any] = {"seconds": seconds, "concurrency": concurrency, "layers": {}}
    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory() as data_dir:
        for layer in LAYERS:
            redis_server = None
            if layer == "durable":
                # without the gRPC metrics, as the layers before it
                gateway = await tp.surgedesk_server(data_dir, metrics=False)
                server, port, redis_server = gateway.server, gateway.port, gateway.redis
            else:
                if layer.endswith("+redis"):
                    redis_server = EmbeddedRedis(Path(data_dir) / "ping").start()
                server, port = await _layer_server(
                    layer, redis_server.url if redis_server is not None else "")
            target = f"127.0.0.1:{port}"
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, tp.load, target, "surgedesk", warmup_s, 8)
            echo_result = await tp.measured(echo_target, "echo", seconds, concurrency)
            result = await tp.measured(target, "surgedesk", seconds, concurrency, redis_server)
            result["echo"] = echo_result
            result["ratio"] = result["per_s"] / echo_result["per_s"]
            report["layers"][layer] = result
            await server.stop(None)
            if redis_server is not None:
                redis_server.stop()
        report["desk_alone"] = await desk_alone(seconds, concurrency, data_dir)
        report["desk_alone_archive"] = await desk_alone(seconds, concurrency, data_dir,
                                                        archived=True)
    await echo.stop(None)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", default="out/gateway-cost.json")
    parser.add_argument("--desk-only", action="store_true",
                        help="only the desk-alone runs (without and with an archive)")
    args = parser.parse_args(argv)
    from surgedesk.adapters.gateway import run_loop
    from surgedesk.benchmarks.report import write_report

    if args.desk_only:
        report = run_loop(run_desk_alone(args.seconds, args.concurrency))
        write_report(report, args.json)
        _print_desk_alone(report)
        return 0
    report = run_loop(run(args.seconds, args.concurrency))
    write_report(report, args.json)
    print("| layer | rate (echo beside it) | ratio | server CPU/call | Redis CPU/call |"
          " load generator CPU/call |")
    print("|---|---:|---:|---:|---:|---:|")
    for layer, r in report["layers"].items():
        redis = f"{r['redis_cpu_us']:.0f} us" if "redis_cpu_us" in r else "--"
        print(f"| {layer} | {r['per_s']:,.0f}/s ({r['echo']['per_s']:,.0f}/s) | "
              f"{r['ratio']:.2f} | {r['server_cpu_us']:.0f} us (echo {r['echo']['server_cpu_us']:.0f}) | "
              f"{redis} | {r['client_cpu_us']:.0f} us |")
    _print_desk_alone(report)
    return 0


def _print_desk_alone(report: dict[str, Any]) -> None:
    for key, what in (("desk_alone", "no archive"), ("desk_alone_archive", "SQLite archive")):
        alone = report[key]
        print(f"desk alone (no gRPC, {what}): {alone['per_s']:,.0f} starts/s, "
              f"{alone['server_cpu_us']:.0f} us CPU per start, Redis "
              f"{alone.get('redis_cpu_us', 0):.0f} us, latency p50 {alone['p50_ms']:.2f} ms "
              f"p99 {alone['p99_ms']:.2f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
