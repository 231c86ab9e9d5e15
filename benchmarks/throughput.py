"""StartConversation (and, with ``--send``, SendMessage) throughput, end to end and durable,
against a bare grpc.aio echo server, with the gateway in this process and placed by Ray.

    python -m surgedesk.benchmarks.throughput [--seconds 10] [--concurrency 64] [--send] [--rounds 3]
                                    [--hosting both|ray|in-process] [--without-group-commit]
                                    [--json out/throughput.json]

The servers run on this machine and are driven by the same load generator, a separate process
(so it does not share the servers' interpreter) keeping ``concurrency`` requests in flight on
one channel for ``seconds``:

* **echo** -- a grpc.aio server whose one unary method returns its request bytes: the ceiling
  of Python gRPC on this machine.
* **in-process** -- the gateway of ``surgedesk serve`` (:class:`surgedesk.adapters.gateway.
  Gateway`: the sample desk, its limits, gRPC metrics, ``/metrics`` endpoint and background
  duties) in this process, over an embedded Redis, serving ``StartConversation`` for a new
  customer each time: the ticket is journaled, queued by the dispatcher (journaled too) and
  answered with its position and estimate. Calls carry a ``service`` bearer token; the echo
  calls carry the same metadata, so both pay the same transport.
* **ray** -- the same gateway placed by Ray (``surgedesk serve --hosting ray``): a
  :class:`~surgedesk.adapters.ray.gateway_host.GatewayHost` actor of a local Ray instance,
  over the same Redis. Ray is started before the first run, so its idle processes weigh on
  every run alike.
* **SendMessage** (``--send``) -- customer messages on 512 open tickets, round robin (each
  customer stays under its own rate limit), each journaled before the answer.

The servers run on uvloop, as ``surgedesk serve`` does by default; the load generator runs on
asyncio's own loop, the same for all.

The ratios are the numbers to watch (absolute rates move with the machine's load): each
hosting against echo, and Ray against in-process. With ``--rounds N`` every server runs N
times, in alternating order, and the median of the rounds' ratios is reported. Each run also
reports the CPU spent per call by the server's process (the whole gateway but Redis), by Redis
and by the load generator: on a small machine they share the cores, which bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import redis

ECHO_METHOD = "/bench.Echo/Call"


BENCH_SECRET = b"throughput-benchmark-secret-0123456789ab"


def _metadata() -> tuple[tuple[str, str], ...]:
    from surgedesk.adapters.identity.tokens import bearer_metadata

    return bearer_metadata(BENCH_SECRET, "service", "bench")


async def _drive(target: str, kind: str, seconds: float, concurrency: int,
                 out: Any, connections: int = 1) -> None:
    from surgedesk.v1 import common_pb2, customer_pb2, customer_pb2_grpc

    channel = grpc.aio.insecure_channel(target)
    await channel.channel_ready()
    # More connections (starts only): each its own, so that gateways sharing the port by
    # SO_REUSEPORT each get some of them.
    extra = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(connections - 1)]
    for c in extra:
        await c.channel_ready()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    metadata = _metadata()
    if kind == "send":
        # SendMessage on open tickets of many customers (each stays under its own rate limit).
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        run = time.time_ns()
        tickets = []
        for i in range(512):
            reply = await stub.StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"send-{run}-{i}", channel=common_pb2.CHANNEL_APP, skill="presale",
                first_message="hello"), metadata=metadata)
            tickets.append((f"send-{run}-{i}", reply.ticket.ticket_id))

        async def one(n: int) -> None:
            customer_id, ticket_id = tickets[n % len(tickets)]
            await stub.SendMessage(customer_pb2.CustomerServiceSendMessageRequest(
                ticket_id=ticket_id, text="still there?", idempotency_key=f"m{n}"),
                metadata=(*metadata, ("x-on-behalf-of", customer_id)))
    elif kind == "echo":
        call = channel.unary_unary(ECHO_METHOD)
        payload = customer_pb2.StartConversationRequest(  # the size of the real requests
            customer_id=f"bench-{time.time_ns()}-0", channel=common_pb2.CHANNEL_APP,
            skill="presale", first_message="hello").SerializeToString()

        async def one(n: int) -> None:
            await call(payload, metadata=metadata)
    else:
        stubs = [customer_pb2_grpc.CustomerServiceStub(c) for c in (channel, *extra)]

        async def one(n: int) -> None:
            await stubs[n % len(stubs)].StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"bench-{time.time_ns()}-{n}", channel=common_pb2.CHANNEL_APP,
                skill="presale", first_message="hello"), metadata=metadata)

    async def worker(w: int) -> None:
        nonlocal errors
        n = w
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await one(n)
            except grpc.aio.AioRpcError:
                errors += 1
            latencies.append(time.perf_counter() - started)
            n += concurrency

    deadline = time.perf_counter() + seconds  # after any set-up
    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*[worker(w) for w in range(concurrency)])
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await channel.close()
    for c in extra:
        await c.close()
    latencies.sort()
    out.put({
        "requests": len(latencies), "errors": errors, "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        # the load generator's own CPU per call (it shares the machine with the servers)
        "client_cpu_us": cpu / max(1, len(latencies)) * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    })


def _load_process(target: str, kind: str, seconds: float, concurrency: int, out: Any,
                  connections: int = 1) -> None:
    asyncio.run(_drive(target, kind, seconds, concurrency, out, connections))


def load(target: str, kind: str, seconds: float, concurrency: int,
         connections: int = 1) -> dict[str, Any]:
    """``concurrency`` calls in flight for ``seconds`` from a load-generator process, over
    ``connections`` connections (starts only; otherwise one)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_load_process,
                       args=(target, kind, seconds, concurrency, queue, connections))
    proc.start()
    result = queue.get(timeout=seconds + 120)
    proc.join(30)
    return result


def _cpu_s_of(pid: int | None) -> float | None:
    """CPU seconds a process has used so far (Linux /proc), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(target: str, kind: str, seconds: float, concurrency: int,
                   redis_server: Any = None, server_pid: int | None = None) -> dict[str, Any]:
    """``load`` with the CPU each side spent per call: the server (this process, or the
    process ``server_pid``: the whole gateway but Redis) and Redis; and Redis's work per call:
    the commands it ran (those inside scripts included) and the scripts called (``EVALSHA``,
    the round trips that carry a start's writes), from ``INFO commandstats`` before and
    after."""
    loop = asyncio.get_running_loop()
    redis_pid = redis_server.process.pid if redis_server is not None and (
        redis_server.process is not None) else None
    commands = _commands_of(redis_server)
    def server_cpu_s() -> float:
        if server_pid is None:
            return time.process_time()
        return _cpu_s_of(server_pid) or 0.0

    cpu, redis_cpu = server_cpu_s(), _cpu_s_of(redis_pid)
    result = await loop.run_in_executor(None, load, target, kind, seconds, concurrency)
    calls = max(1, result["requests"])
    result["server_cpu_us"] = (server_cpu_s() - cpu) / calls * 1e6
    if redis_cpu is not None:
        after = _cpu_s_of(redis_pid)
        if after is not None:
            result["redis_cpu_us"] = (after - redis_cpu) / calls * 1e6
    after_commands = _commands_of(redis_server)
    if commands is not None and after_commands is not None:
        result["redis_commands_per_call"] = (after_commands[0] - commands[0] - 1) / calls
        result["redis_scripts_per_call"] = (after_commands[1] - commands[1]) / calls
    return result


def _commands_of(redis_server: Any) -> tuple[int, int] | None:
    """Commands the Redis server has run so far, and of them the script calls (None without
    a server)."""
    if redis_server is None:
        return None
    with redis.Redis.from_url(redis_server.url) as client:
        stats = client.info("commandstats")
    total = sum(int(v["calls"]) for v in stats.values())
    scripts = sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                  for name in ("evalsha", "eval"))
    return total, scripts


async def echo_server() -> tuple[grpc.aio.Server, int]:
    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@dataclass
class Gateway:
    """The gateway under test (hand-built, in this process), its embedded Redis and (as
    ``surgedesk serve`` has) its metrics endpoint, whose gRPC metrics count and time every
    call."""

    server: Any
    port: int
    redis: Any
    metrics: Any = None
    client: Any = None  # the in-process engine's one Redis client

    async def stop(self) -> None:
        await self.server.stop(None)
        if self.metrics is not None:
            await self.metrics.stop()


async def surgedesk_server(data_dir: str, *, metrics: bool = True) -> Gateway:
    """A gateway wired as a gateway wires itself, built by hand in this process
    (``metrics=False``: without its metrics endpoint and gRPC metrics), for
    :mod:`surgedesk.benchmarks.gateway_cost`'s layers."""
    from surgedesk.adapters.desk.catalogue import SkillProfile
    from surgedesk.adapters.desk.desk import Desk
    from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
    from surgedesk.adapters.gateway import tune_gc
    from surgedesk.adapters.grpc.authorization import Gate
    from surgedesk.adapters.grpc.server import build_server
    from surgedesk.adapters.identity.tokens import TokenVerifier
    from surgedesk.adapters.metrics.exposition import serve_metrics
    from surgedesk.adapters.redis.connect import redis_client
    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    redis_server = EmbeddedRedis(Path(data_dir) / "redis").start()
    client = redis_client(redis_server.url)  # one connection for the engine, as a gateway has
    desk = Desk(GatewayActors(redis_server.url, client=client),
                await GatewayDispatcher(redis_server.url, client=client).start(), client)
    await desk.catalogue.upsert_skill(SkillProfile("presale"))  # the line its customers name
    tune_gc()  # as a gateway does once it has started
    endpoint = await serve_metrics(desk, "127.0.0.1", 0) if metrics else None
    server, port = await build_server(
        desk, "127.0.0.1:0", Gate(TokenVerifier(BENCH_SECRET)),
        metrics=endpoint.grpc_metrics if endpoint is not None else None)
    await server.start()
    return Gateway(server, port, redis_server, endpoint, client)


@dataclass
class Served:
    """A gateway under test as ``surgedesk serve`` runs it: in this process (in-process
    hosting) or in a Ray actor placed by Ray (Ray hosting)."""

    hosting: str
    port: int
    pid: int | None  # the serving process, for its CPU (None: this process)
    client: Any = None  # in this process: the gateway's Redis client (group commit)
    registry: Any = None  # in this process: its metrics registry
    stop: Any = None  # a coroutine function

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


async def serve_gateway(hosting: str, redis_url: str, data_dir: str) -> Served:
    """The gateway of ``surgedesk serve`` (the sample desk, its limits, metrics and duties)
    over ``redis_url``: in this process, or placed by Ray in a :class:`~surgedesk.adapters.
    ray.gateway_host.GatewayHost` actor of a local Ray instance."""
    from surgedesk.adapters.gateway import Gateway as ServingGateway
    from surgedesk.adapters.gateway import GatewayOptions

    options = GatewayOptions(port=0, data_dir=data_dir, secret=BENCH_SECRET,
                             redis_url=redis_url, metrics_port=0)
    if hosting == "in-process":
        gateway = ServingGateway(options)
        await gateway.start()
        stop_event = asyncio.Event()
        serving = asyncio.create_task(gateway.serve(stop_event))

        async def stop_here() -> None:
            stop_event.set()
            await serving

        registry = gateway.metrics.registry if gateway.metrics is not None else None
        return Served(hosting, gateway.port, None, gateway.client, registry, stop_here)
    import ray

    from surgedesk.adapters.ray.gateway_host import NAMESPACE, place, remove

    if not ray.is_initialized():
        os.environ.setdefault("RAY_worker_niceness", "0")  # as surgedesk serve starts Ray
        ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE,
                 logging_level=logging.ERROR, log_to_driver=False)
    handle = place(0, options, "uvloop", 1.0)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ray.get, handle.ready.remote())
    port, pid = await loop.run_in_executor(None, ray.get, [handle.port.remote(),
                                                           handle.pid.remote()])

    async def stop_ray() -> None:
        await loop.run_in_executor(None, remove, handle, 60.0, "gateway-0")

    return Served(hosting, port, pid, stop=stop_ray)


async def _gateway_run(served: Served, seconds: float, concurrency: int, redis_server: Any, *,
                       group_commit: bool = True) -> dict[str, Any]:
    """One ``measured`` run of starts against the gateway, with the writes its Redis
    connection held for company meanwhile (in this process); ``group_commit=False`` turns that
    off for this run only."""
    fast = served.client.fast if served.client is not None else None
    if fast is None:
        return await measured(served.target, "surgedesk", seconds, concurrency, redis_server,
                              server_pid=served.pid)
    hold_s = fast.hold_s
    if not group_commit:
        fast.hold_writes(0.0)
    commit = fast.group_commit
    held = commit.held if commit is not None else 0
    try:
        result = await measured(served.target, "surgedesk", seconds, concurrency, redis_server)
    finally:
        fast.hold_writes(hold_s)
    if commit is not None and commit is fast.group_commit:  # the same connection throughout
        result["held_writes"] = commit.held - held
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


async def run(seconds: float, concurrency: int, hosting: str = "both", *, send: bool = False,
              rounds: int = 1, without_group_commit: bool = False) -> dict[str, Any]:
    """Echo, then the gateway of each hosting (``both``: in-process and Ray, in alternating
    order), ``rounds`` times. Ray is started before the first run, so that its idle processes
    weigh on every run alike. Reported: each hosting's median round, the median of the rounds'
    ratios to echo, and with both, the median of the rounds' ratios Ray / in-process.

    ``without_group_commit`` (in-process hosting): each round also measures the gateway with
    its Redis connection's group commit off (:class:`surgedesk.adapters.redis.client.GroupCommit`);
    the report adds that ratio's median and the median of the rounds' gains (with / without)."""
    import ray

    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    hostings = ["in-process", "ray"] if hosting == "both" else [hosting]
    ray_of_its_own = not ray.is_initialized()  # stopped at the end if this run started it
    loop = asyncio.get_running_loop()
    echo, echo_port = await echo_server()
    echo_target = f"127.0.0.1:{echo_port}"
    with tempfile.TemporaryDirectory() as data_dir:
        redis_server = EmbeddedRedis(Path(data_dir) / "redis").start()
        gateways = {h: await serve_gateway(h, redis_server.url, data_dir) for h in hostings}
        warm = {h: await loop.run_in_executor(None, load, g.target, "surgedesk", 2.0, 8)
                for h, g in gateways.items()}
        measured_rounds = []
        for n in range(max(1, rounds)):
            echo_result = await measured(echo_target, "echo", seconds, concurrency)
            measured_round: dict[str, Any] = {"echo": echo_result}
            modes = list(hostings)
            if without_group_commit and "in-process" in hostings:
                modes.append("without_group_commit")
            for mode in modes if n % 2 == 0 else modes[::-1]:
                served = gateways["in-process" if mode == "without_group_commit" else mode]
                measured_round[mode] = await _gateway_run(
                    served, seconds, concurrency, redis_server,
                    group_commit=mode != "without_group_commit")
            for mode in modes:
                measured_round[f"ratio_{mode}"] = (measured_round[mode]["per_s"]
                                                   / echo_result["per_s"])
            if len(hostings) == 2:
                measured_round["ray_vs_in_process"] = (measured_round["ray"]["per_s"]
                                                       / measured_round["in-process"]["per_s"])
            if "without_group_commit" in modes:
                measured_round["group_commit_gain"] = (
                    measured_round["in-process"]["per_s"]
                    / measured_round["without_group_commit"]["per_s"])
            measured_rounds.append(measured_round)
        first = gateways[hostings[0]]
        send_result = (await measured(first.target, "send", seconds, concurrency, redis_server,
                                      server_pid=first.pid) if send else None)
        counted = (first.registry.get_sample_value(
            "surgedesk_grpc_server_handled_total",
            {"grpc_service": "surgedesk.v1.CustomerService", "grpc_method": "StartConversation",
             "grpc_code": "OK"}) if first.registry is not None else None)
        for served in gateways.values():
            await served.stop()
        if ray_of_its_own and ray.is_initialized():
            ray.shutdown()
        redis_server.stop()
    await echo.stop(None)
    report: dict[str, Any] = {
        "seconds": seconds, "concurrency": concurrency, "hostings": hostings,
        "warmup": warm, "rounds": measured_rounds,
        # what the first gateway's gRPC metrics counted (in this process): every start,
        # warm-up included
        "starts_counted_by_metrics": counted,
    }
    for mode in [*hostings, "without_group_commit"]:
        if mode not in measured_rounds[0]:
            continue
        ratio = _median([r[f"ratio_{mode}"] for r in measured_rounds])
        report[f"ratio_{mode}"] = ratio
        report[mode] = next(r for r in measured_rounds if r[f"ratio_{mode}"] == ratio)[mode]
    report["echo"] = _median_round(measured_rounds, "echo")
    if len(hostings) == 2:
        report["ray_vs_in_process"] = _median([r["ray_vs_in_process"] for r in measured_rounds])
    if "group_commit_gain" in measured_rounds[0]:
        report["group_commit_gain"] = _median([r["group_commit_gain"] for r in measured_rounds])
    if send_result is not None:
        report["send_message"] = send_result
        report["send_ratio"] = send_result["per_s"] / report["echo"]["per_s"]
    return report


def _median_round(rounds: list[dict[str, Any]], side: str) -> dict[str, Any]:
    ordered = sorted(rounds, key=lambda r: r[side]["per_s"])
    return dict(ordered[len(ordered) // 2][side])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--hosting", choices=("both", "ray", "in-process"), default="both",
                        help="the gateway in this process, placed by Ray, or both in the same "
                             "rounds (default)")
    parser.add_argument("--send", action="store_true", help="also measure SendMessage")
    parser.add_argument("--rounds", type=int, default=1,
                        help="echo and the gateways this many times in turn; the median ratios "
                             "are reported")
    parser.add_argument("--without-group-commit", action="store_true",
                        help="each round also measures the in-process gateway with its Redis "
                             "group commit off")
    parser.add_argument("--json", default="out/throughput.json")
    args = parser.parse_args(argv)
    from surgedesk.adapters.gateway import run_loop
    from surgedesk.benchmarks.report import write_report

    report = run_loop(run(args.seconds, args.concurrency, args.hosting, send=args.send,
                          rounds=args.rounds, without_group_commit=args.without_group_commit))
    write_report(report, args.json)
    for name in ("echo", *report["hostings"], "without_group_commit", "send_message"):
        if name not in report:
            continue
        r = report[name]
        redis_cpu = f"  Redis {r['redis_cpu_us']:4.0f}" if "redis_cpu_us" in r else ""
        if "redis_commands_per_call" in r:
            redis_cpu += (f" ({r['redis_commands_per_call']:.1f} commands, "
                          f"{r['redis_scripts_per_call']:.2f} scripts)")
        print(f"{name:20} {r['per_s']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
              f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  CPU us/call: server "
              f"{r['server_cpu_us']:4.0f}{redis_cpu}  load generator {r['client_cpu_us']:4.0f}")
    for mode in (*report["hostings"], "without_group_commit"):
        if f"ratio_{mode}" in report:
            rounds = ", ".join(f"{r[f'ratio_{mode}']:.3f}" for r in report["rounds"])
            print(f"ratio {mode}/echo: {report[f'ratio_{mode}']:.3f} (rounds: {rounds})")
    if "ray_vs_in_process" in report:
        rounds = ", ".join(f"{r['ray_vs_in_process']:.3f}" for r in report["rounds"])
        print(f"ratio ray/in-process: {report['ray_vs_in_process']:.3f} (rounds: {rounds})")
    if "group_commit_gain" in report:
        print(f"gain of group commit (in-process / without): {report['group_commit_gain']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
