"""StartConversation (and, with ``--send``, SendMessage) throughput, end to end and durable,
against a bare grpc.aio echo server.

    python -m surgedesk.benchmarks.throughput [--seconds 10] [--concurrency 64] [--send] [--rounds 3]
                                    [--hosting ray|in-process] [--without-group-commit]
                                    [--json out/throughput.json]

Both servers run in this process's machine and are driven by the same load generator, a
separate process (so it does not share the servers' interpreter) keeping ``concurrency``
requests in flight on one channel for ``seconds``:

* **echo** -- a grpc.aio server whose one unary method returns its request bytes: the ceiling
  of Python gRPC on this machine.
* **surgedesk** -- the real gateway with Ray-hosted shards and dispatcher (or, with
  ``--hosting in-process``, both in the gateway's own process) and an embedded Redis,
  serving ``StartConversation`` for a new customer each time: the ticket is journaled, queued
  by the dispatcher (journaled too) and answered with its position and estimate. The gateway
  is built as ``surgedesk serve`` builds it: its gRPC metrics count and time every
  call, its ``/metrics`` endpoint refreshes its snapshot every second. Calls carry a
  ``service`` bearer token and pass the gateway's default rate limits and admission bounds;
  the echo calls carry the same metadata, so both pay the same transport.
* **SendMessage** (``--send``) -- customer messages on 512 open tickets, round robin (each
  customer stays under its own rate limit), each journaled before the answer.

The servers run on uvloop, as ``surgedesk serve`` does by default; the load generator runs on
asyncio's own loop, the same for both.

The ratio surgedesk / echo is the number to watch; absolute rates move with the machine's load.
With ``--rounds N`` (in-process hosting) echo and surgedesk run N times in turn and the median
ratio is reported. Each run also reports the CPU spent per call by this process (the server;
with in-process hosting the whole engine but Redis), by Redis and by the load generator: on a
small machine they share the cores, which bounds the rate.
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
            await stub.SendMessage(customer_pb2.CustomerSendMessageRequest(
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
                   redis_server: Any = None) -> dict[str, Any]:
    """``load`` with the CPU each side spent per call: this process (the server: with
    in-process hosting, the whole engine but Redis) and Redis; and Redis's work per call: the
    commands it ran (those inside scripts included) and the scripts called (``EVALSHA``, the
    round trips that carry a start's writes), from ``INFO commandstats`` before and after."""
    loop = asyncio.get_running_loop()
    redis_pid = redis_server.process.pid if redis_server is not None and (
        redis_server.process is not None) else None
    commands = _commands_of(redis_server)
    cpu, redis_cpu = time.process_time(), _cpu_s_of(redis_pid)
    result = await loop.run_in_executor(None, load, target, kind, seconds, concurrency)
    calls = max(1, result["requests"])
    result["server_cpu_us"] = (time.process_time() - cpu) / calls * 1e6
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
    """The gateway under test, its embedded Redis and (as ``surgedesk serve`` has) its metrics
    endpoint, whose gRPC metrics count and time every call."""

    server: Any
    port: int
    redis: Any
    metrics: Any = None
    client: Any = None  # the in-process engine's one Redis client

    async def stop(self) -> None:
        await self.server.stop(None)
        if self.metrics is not None:
            await self.metrics.stop()


async def surgedesk_server(data_dir: str, shards: int, hosting: str, *,
                           metrics: bool = True) -> Gateway:
    """The gateway as ``surgedesk serve`` builds it (``metrics=False``: without its metrics
    endpoint and gRPC metrics)."""
    import ray

    from surgedesk.adapters.desk.desk import Desk
    from surgedesk.adapters.desk.local import LocalDispatcher, LocalShards
    from surgedesk.adapters.grpc.authorization import Gate
    from surgedesk.adapters.grpc.server import build_server
    from surgedesk.adapters.identity.tokens import TokenVerifier
    from surgedesk.adapters.metrics.exposition import serve_metrics
    from surgedesk.adapters.ray.dispatcher import DispatcherClient, DispatcherHost
    from surgedesk.adapters.ray.shards import ShardClient, ShardHost
    from surgedesk.adapters.redis.connect import redis_client
    from surgedesk.adapters.redis.embedded import EmbeddedRedis
    from surgedesk.adapters.serve import tune_gc

    redis_server = EmbeddedRedis(Path(data_dir) / "redis").start()
    if hosting == "in-process":
        client = redis_client(redis_server.url)  # one connection for the engine, as serve does
        desk = Desk(LocalShards(redis_server.url, client=client),
                    await LocalDispatcher(redis_server.url, client=client).start(), client)
    else:
        client = None
        ray.init(num_cpus=2, include_dashboard=False, namespace="surgedesk-bench",
                 logging_level=logging.ERROR, log_to_driver=False)
        hosts = [ShardHost.remote(i, redis_server.url)  # type: ignore[attr-defined]
                 for i in range(shards)]
        dispatcher = DispatcherHost.remote(redis_server.url)  # type: ignore[attr-defined]
        desk = Desk(ShardClient(hosts), DispatcherClient(dispatcher),
                    redis_client(redis_server.url))
    tune_gc()  # as surgedesk serve does once it has started
    endpoint = await serve_metrics(desk, "127.0.0.1", 0) if metrics else None
    server, port = await build_server(
        desk, "127.0.0.1:0", Gate(TokenVerifier(BENCH_SECRET)),
        metrics=endpoint.grpc_metrics if endpoint is not None else None)
    await server.start()
    return Gateway(server, port, redis_server, endpoint, client)


async def _gateway_run(gateway: Gateway, target: str, seconds: float, concurrency: int,
                       redis_server: Any, *, group_commit: bool = True) -> dict[str, Any]:
    """One ``measured`` run of starts against the gateway, with the writes its Redis
    connection held for company meanwhile (in-process hosting); ``group_commit=False`` turns
    that off for this run only."""
    fast = gateway.client.fast if gateway.client is not None else None
    if fast is None:
        return await measured(target, "surgedesk", seconds, concurrency, redis_server)
    hold_s = fast.hold_s
    if not group_commit:
        fast.hold_writes(0.0)
    commit = fast.group_commit
    held = commit.held if commit is not None else 0
    try:
        result = await measured(target, "surgedesk", seconds, concurrency, redis_server)
    finally:
        fast.hold_writes(hold_s)
    if commit is not None and commit is fast.group_commit:  # the same connection throughout
        result["held_writes"] = commit.held - held
    return result


async def run(seconds: float, concurrency: int, shards: int,
              hosting: str = "ray", send: bool = False, rounds: int = 1,
              without_group_commit: bool = False) -> dict[str, Any]:
    """Echo, then surgedesk, ``rounds`` times in turn (in-process hosting; with Ray, one round,
    the echo measured before Ray starts, whose idle processes would slow it). The ratio
    reported is the median of the rounds' ratios: on a shared machine the capacity on offer
    drifts between runs, and a round's two runs are close in time.

    ``without_group_commit`` (in-process hosting): each round also measures the gateway with
    its Redis connection's group commit off (:class:`surgedesk.adapters.redis.client.GroupCommit`),
    before or after the usual run in alternate rounds; the report adds that ratio's median and
    the median of the rounds' gains (with / without)."""
    if hosting == "ray":
        rounds = 1
        without_group_commit = False
    loop = asyncio.get_running_loop()
    echo, echo_port = await echo_server()
    echo_target = f"127.0.0.1:{echo_port}"
    first_echo = (await measured(echo_target, "echo", seconds, concurrency)
                  if hosting == "ray" else None)
    with tempfile.TemporaryDirectory() as data_dir:
        gateway = await surgedesk_server(data_dir, shards, hosting)
        redis_server = gateway.redis
        target = f"127.0.0.1:{gateway.port}"
        warm = await loop.run_in_executor(None, load, target, "surgedesk", 2.0, 8)
        measured_rounds = []
        for n in range(max(1, rounds)):
            echo_result = first_echo or await measured(echo_target, "echo", seconds,
                                                       concurrency)
            measured_round: dict[str, Any] = {"echo": echo_result}
            modes = ["surgedesk", "without_group_commit"] if without_group_commit else [
                "surgedesk"]
            for mode in modes if n % 2 == 0 else modes[::-1]:
                measured_round[mode] = await _gateway_run(
                    gateway, target, seconds, concurrency, redis_server,
                    group_commit=mode == "surgedesk")
            measured_round["ratio"] = measured_round["surgedesk"]["per_s"] / echo_result["per_s"]
            if without_group_commit:
                off = measured_round["without_group_commit"]["per_s"]
                measured_round["ratio_without_group_commit"] = off / echo_result["per_s"]
                measured_round["group_commit_gain"] = measured_round["surgedesk"]["per_s"] / off
            measured_rounds.append(measured_round)
        send_result = (await measured(target, "send", seconds, concurrency, redis_server)
                       if send else None)
        counted = (gateway.metrics.registry.get_sample_value(
            "surgedesk_grpc_server_handled_total",
            {"grpc_service": "surgedesk.v1.CustomerService", "grpc_method": "StartConversation",
             "grpc_code": "OK"}) if gateway.metrics is not None else None)
        await gateway.stop()
        import ray

        if ray.is_initialized():
            ray.shutdown()
        redis_server.stop()
    await echo.stop(None)
    median = sorted(measured_rounds, key=lambda r: r["ratio"])[len(measured_rounds) // 2]
    report = {
        "seconds": seconds, "concurrency": concurrency, "shards": shards, "hosting": hosting,
        "echo": median["echo"], "surgedesk": median["surgedesk"], "warmup": warm,
        "ratio": median["ratio"], "rounds": measured_rounds,
        # what the gateway's gRPC metrics counted: every start, warm-up included
        "starts_counted_by_metrics": counted,
    }
    if without_group_commit:
        def median_of(key: str) -> float:
            values = sorted(r[key] for r in measured_rounds)
            return values[len(values) // 2]
        report["ratio_without_group_commit"] = median_of("ratio_without_group_commit")
        report["group_commit_gain"] = median_of("group_commit_gain")
    if send_result is not None:
        report["send_message"] = send_result
        report["send_ratio"] = send_result["per_s"] / median["echo"]["per_s"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--hosting", choices=("ray", "in-process"), default="ray",
                        help="shards and dispatcher as Ray actors, or in the gateway process")
    parser.add_argument("--send", action="store_true", help="also measure SendMessage")
    parser.add_argument("--rounds", type=int, default=1,
                        help="echo and surgedesk this many times in turn (in-process hosting); "
                             "the median ratio is reported")
    parser.add_argument("--without-group-commit", action="store_true",
                        help="each round also measures the gateway with its Redis group commit "
                             "off (in-process hosting)")
    parser.add_argument("--json", default="out/throughput.json")
    args = parser.parse_args(argv)
    from surgedesk.adapters.serve import run_loop
    from surgedesk.benchmarks.report import write_report

    report = run_loop(run(args.seconds, args.concurrency, args.shards, args.hosting, args.send,
                          args.rounds, args.without_group_commit))
    write_report(report, args.json)
    for name in ("echo", "surgedesk", "send_message"):
        if name not in report:
            continue
        r = report[name]
        redis_cpu = f"  Redis {r['redis_cpu_us']:4.0f}" if "redis_cpu_us" in r else ""
        if "redis_commands_per_call" in r:
            redis_cpu += (f" ({r['redis_commands_per_call']:.1f} commands, "
                          f"{r['redis_scripts_per_call']:.2f} scripts)")
        print(f"{name:10} {r['per_s']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
              f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  CPU us/call: server "
              f"{r['server_cpu_us']:4.0f}{redis_cpu}  load generator {r['client_cpu_us']:4.0f}")
    if len(report["rounds"]) > 1:
        print("ratios of the rounds: " + ", ".join(f"{r['ratio']:.3f}" for r in report["rounds"])
              + " (the median round is shown above)")
    print(f"ratio surgedesk/echo: {report['ratio']:.3f}")
    if "group_commit_gain" in report:
        print("without group commit: ratios of the rounds " + ", ".join(
            f"{r['ratio_without_group_commit']:.3f}" for r in report["rounds"])
            + f", median {report['ratio_without_group_commit']:.3f}; gain with it, median of "
            f"the rounds: {report['group_commit_gain']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
