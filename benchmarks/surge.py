"""``surgedesk surge``: a scenario in real time, K times faster, through the gRPC API.

    surgedesk surge SCENARIO.toml --speedup 60 --json out/surge.json [--records out/surge.csv]
                    [--target HOST:PORT] [--workers N] [--hosting ray|in-process]

Who runs what:

* **The engine.** With ``--target`` the engine is someone else's; it must run with the same
  clock (``surgedesk serve --time-scale K``) and its token secret must be in
  ``SURGEDESK_TOKEN_SECRET`` (or ``--secret-file``). Otherwise this starts ``surgedesk serve``
  itself as a separate process on a fresh data directory, with ``--time-scale K`` (the engine's
  clock runs K times faster, so the desk's policy, timers and estimates work in scenario
  seconds unchanged), and the scenario's routing policy and service process.
* **The desk's set-up**, through AdminService like an operator: the scenario's skills with their
  expected handle times, the routing policy, and every agent with its skills and capacity.
* **The people**, in ``--workers`` processes (:mod:`surgedesk.benchmarks.surge_clients`): the same
  customers and agents :func:`surgedesk.benchmarks.population.build_population` gives ``simulate``.

The report has the keys of docs/FORMATS.md, computed by the same code as ``simulate``'s
(:mod:`surgedesk.benchmarks.report`), with scenario times (wall seconds x K); plus ``simulate``: the
same scenario through the simulator, and ``agreement``: whether the waits agree (within 10% or 5
scenario seconds). ``dispatch_lag_ms`` is measured by the agents, in wall milliseconds; the
engine's own histogram is under ``engine``. ``lost`` counts customers whose start the engine
acknowledged and whose ticket it cannot show afterwards: what must never happen.
``unanswered`` counts those whose start got no answer (an error, or none before the run
ended): the engine promised them nothing, and the clients' errors (``clients``) say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import multiprocessing as mp
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgedesk.adapters.clock import ORIGIN_S
from surgedesk.benchmarks.people import Population
from surgedesk.benchmarks.report import quantile
from surgedesk.benchmarks.scenario import Scenario
from surgedesk.benchmarks.simulator import CustomerRecord, TimelinePoint, timeline_bin_s
from surgedesk.benchmarks.surge_clients import Shared, WorkerPlan, run_worker, until_accepted
from surgedesk.engine.errors import InvalidArgument

WAIT_TOLERANCE = 0.10  # waits agree within 10% of the simulator's ...
WAIT_TOLERANCE_S = 5.0  # ... or 5 scenario seconds


@dataclass(frozen=True)
class SurgeOptions:
    speedup: float
    target: str | None = None
    workers: int = 1
    hosting: str = "in-process"
    gateways: int = 1  # gateway processes of the engine this starts
    secret: bytes | None = None
    drain_s: float = 60.0  # wall seconds the run waits for the last customers
    policy: str | None = None
    engine_log: str | None = None  # keep the started engine's output here
    greet: bool = True
    estimate_scale: float = 1.0  # the engine this starts tells waits scaled by this
    archive_grace_s: float | None = None  # the engine's [archive] grace_s (None: default)
    plan_known: bool = True  # the desk is given its staffing plan (AdminService.SetRoster)


# ---------------------------------------------------------------- the engine
class OwnEngine:
    """``surgedesk serve`` in a child process on a fresh data directory."""

    def __init__(self, scenario: Scenario, options: SurgeOptions, policy: str) -> None:
        self.scenario, self.options, self.policy = scenario, options, policy
        self.secret = secrets.token_hex(32).encode()
        self._dir = tempfile.TemporaryDirectory(prefix="surgedesk-surge-")
        self.log_path = Path(self._dir.name) / "serve.log"
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.metrics_url = ""

    def redis_socket(self) -> str:
        """The unix socket of the engine's embedded Redis."""
        return str(Path(self._dir.name) / "data" / "redis" / "redis.sock")

    def desk_file(self) -> Path:
        """The desk: the scenario's policy and service process. Customers in a scenario are
        never silent and give up by their own patience, so the desk's silence and queue-cap
        rules are off; limits are the product's defaults."""
        proc = self.scenario.process
        text = f"""[routing]
policy = "{self.policy}"

[service]
silence_reminder_s = 0
silence_close_s = 0
queue_wait_cap_s = 0
slow_reply_alarm_s = 0
confirmation_timeout_s = 0
wrap_up_s = {proc.wrap_up_s}
"""
        if self.options.archive_grace_s is not None:
            text += f"\n[archive]\ngrace_s = {self.options.archive_grace_s!r}\nevery_s = 2\n"
        path = Path(self._dir.name) / "desk.toml"
        path.write_text(text)
        return path

    def start(self, timeout_s: float = 90.0) -> None:
        env = dict(os.environ, SURGEDESK_TOKEN_SECRET=self.secret.decode())
        env.pop("REDIS_URL", None)
        env.pop("RAY_ADDRESS", None)
        cmd = [sys.executable, "-m", "surgedesk", "serve", "--port", "0", "--metrics-port", "0",
               "--data-dir", str(Path(self._dir.name) / "data"), "--config", str(self.desk_file()),
               "--time-scale", f"{self.options.speedup:g}", "--hosting", self.options.hosting,
               "--gateways", str(self.options.gateways),
               "--estimate-scale", f"{self.options.estimate_scale:g}"]
        # The engine's output goes to a file: a pipe nobody drains would stall the engine.
        self.log_path = Path(self._dir.name) / "serve.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"serving.* on (\S+):(\d+) .*metrics on (\S+)", self.log_path.read_text())
            if m:
                self.address = f"{m.group(1)}:{m.group(2)}"
                self.metrics_url = m.group(3)
                return
            time.sleep(0.1)
        tail = self.log_path.read_text()[-3000:]
        self.stop()
        raise RuntimeError("the engine did not start:\n" + tail)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def pids(self) -> list[int]:
        """The engine's processes: ``serve`` and the gateways it announced (gateways placed by
        Ray are not its children)."""
        if self.proc is None:
            return []
        m = re.search(r"gateways placed by Ray .*?, pids ([\d, ]+);", self.log_tail(100_000))
        return [self.proc.pid, *([int(p) for p in m.group(1).split(", ")] if m else [])]

    def stop(self) -> None:
        if self.options.engine_log and self.log_path.exists():
            Path(self.options.engine_log).parent.mkdir(parents=True, exist_ok=True)
            Path(self.options.engine_log).write_text(self.log_path.read_text())
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._dir.cleanup()


async def configure_desk(target: str, secret: bytes, population: Population, policy: str,
                         run_id: str) -> None:
    """Skills (expected handle times), the routing policy and the agents, as an operator would."""
    import grpc

    from surgedesk.adapters.identity.tokens import bearer_metadata
    from surgedesk.v1 import admin_pb2, admin_pb2_grpc

    md = bearer_metadata(secret, "admin", "surge")

    async def call(method: Any, request: Any) -> Any:
        return await until_accepted(lambda: method(request, metadata=md, timeout=30))

    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for skill in population.skills:
            await call(admin.UpsertSkill, admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(
                name=skill, expected_handle_seconds=population.handle_mean_s.get(skill, 0.0))))
        await call(admin.SetPolicy, admin_pb2.SetPolicyRequest(policy=admin_pb2.RoutingPolicy(
            preset=admin_pb2.RoutingPreset.Value(
                "ROUTING_PRESET_" + policy.upper().replace("-", "_")))))
        sem = asyncio.Semaphore(8)

        async def agent(a: Any) -> None:
            async with sem:
                await call(admin.UpsertAgent, admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
                    agent_id=f"{run_id}-{a.agent_id}", display_name=a.agent_id,
                    skills=dict(a.skills), capacity=a.capacity)))

        await asyncio.gather(*[agent(a) for a in population.agents])


async def set_roster(target: str, secret: bytes, population: Population, run_id: str,
                     zero_s: float) -> None:
    """The staffing plan, as a workforce-management roster gives it: every agent's shift
    (``from_s`` to ``planned_to_s``, else ``to_s``), in engine time from ``zero_s``, the
    engine time of the scenario's start (AdminService.SetRoster)."""
    import grpc

    from surgedesk.adapters.identity.tokens import bearer_metadata
    from surgedesk.v1 import admin_pb2, admin_pb2_grpc

    shifts = []
    for a in population.agents:
        shift = admin_pb2.PlannedShift(agent_id=f"{run_id}-{a.agent_id}", skills=dict(a.skills),
                                       capacity=a.capacity)
        shift.start_time.FromNanoseconds(int((zero_s + a.from_s) * 1e9))
        end = a.to_s if a.planned_to_s is None else a.planned_to_s
        if math.isfinite(end):
            shift.end_time.FromNanoseconds(int((zero_s + end) * 1e9))
        shifts.append(shift)
    md = bearer_metadata(secret, "admin", "surge")
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        await until_accepted(lambda: admin.SetRoster(admin_pb2.SetRosterRequest(shifts=shifts),
                                                     metadata=md, timeout=30))


async def engine_knows(target: str, secret: bytes, customer_ids: Sequence[str]) -> set[str]:
    """The customers whose ticket the engine can show (GetHistory, as their frontend)."""
    import grpc

    from surgedesk.adapters.identity.tokens import bearer_metadata
    from surgedesk.v1 import customer_pb2, customer_pb2_grpc

    md = bearer_metadata(secret, "service", "surge-audit")
    known: set[str] = set()
    sem = asyncio.Semaphore(48)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)

        async def one(cid: str) -> None:
            async with sem:
                try:
                    reply = await until_accepted(lambda: stub.GetHistory(
                        customer_pb2.GetHistoryRequest(customer_id=cid, page_size=1),
                        metadata=md, timeout=30), attempts=20, pause_s=0.2)
                except grpc.aio.AioRpcError:
                    return  # not shown: counted lost if it was acknowledged
                if reply.tickets:
                    known.add(cid)

        await asyncio.gather(*[one(c) for c in customer_ids])
    return known


def scrape(metrics_url: str) -> str:
    """The engine's metrics, in the Prometheus text format."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


def scrape_histogram(text: str, name: str) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` of a Prometheus histogram, from the text format."""
    out = []
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket\{{le="([^"]+)"\}} (\S+)', line)
        if m:
            out.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    return out


def scrape_coverage(text: str) -> dict[str, dict[str, float]]:
    """The engine's own live measure of its estimates' honesty at the end of the run:
    skill -> quantile -> ``surgedesk_estimate_coverage_ratio`` (over the skill's latest
    outcomes), with ``outcomes``."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = re.match(r'surgedesk_estimate_coverage_ratio\{quantile="([^"]+)",skill="([^"]+)"\}'
                     r" (\S+)", line)
        if m:
            out.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
        m = re.match(r'surgedesk_estimate_coverage_outcomes\{skill="([^"]+)"\} (\S+)', line)
        if m:
            out.setdefault(m.group(1), {})["outcomes"] = float(m.group(2))
    return out


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket holding the quantile."""
    if not buckets or buckets[-1][1] == 0:
        return 0.0
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * ((rank - below) / max(count - below, 1e-12))
        lower, below = upper, count
    return lower


def _process_tree(roots: int | list[int]) -> list[int]:
    """The processes ``roots`` and their children, each once."""
    pids: list[int] = []
    for pid in [roots] if isinstance(roots, int) else roots:
        pids.append(pid)
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                pids.append(int(line))
    return list(dict.fromkeys(pids))


def process_rss_bytes(pid: int | list[int] | None) -> int:
    """Resident memory of processes and their children (the engine: its supervisor, Redis and
    gateways), from /proc."""
    if not pid:
        return 0
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def process_cpu_seconds(pid: int | list[int] | None) -> float:
    """CPU time (user + system) processes and their children (the engine: its supervisor, Redis
    and gateways) used so far, from /proc."""
    if not pid:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def engine_usage(samples: list[tuple[float, float, int, float]], duration_s: float,
                 customers: int, bins: int = 24) -> dict[str, Any]:
    """Peak RSS and the CPU the engine (with its Redis) spent over the scenario: in all, per
    customer, and in cores busy (CPU seconds per wall second) per bin of scenario time.
    ``samples`` are ``(scenario_s, wall_s, rss_bytes, cpu_s)``."""
    out: dict[str, Any] = {"rss_peak_bytes": max((s[2] for s in samples), default=0)}
    inside = [s for s in samples if 0.0 <= s[0] <= duration_s]
    if len(inside) < 2:
        return out
    cpu_s = inside[-1][3] - inside[0][3]
    width = duration_s / bins
    timeline = []
    for b in range(bins):
        pts = [s for s in inside if b * width <= s[0] <= (b + 1) * width]
        if len(pts) >= 2 and pts[-1][1] > pts[0][1]:
            timeline.append({"t_s": b * width,
                             "cores": (pts[-1][3] - pts[0][3]) / (pts[-1][1] - pts[0][1])})
    out.update(cpu_s=cpu_s, cpu_ms_per_customer=1000 * cpu_s / max(customers, 1),
               cores_peak=max((p["cores"] for p in timeline), default=0.0),
               cpu_timeline=timeline)
    return out


# ---------------------------------------------------------------- the run
def run_surge(scenario: Scenario, population: Population, options: SurgeOptions,
              progress: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    """Run the people against the engine; return records, timeline and measurements."""
    from surgedesk.engine.policies import policy_named

    if scenario.process.offer_timeout_s > 0:
        raise InvalidArgument("process.offer_timeout_s",
                              "surge does not play offer mode yet; run it with simulate")
    if options.speedup <= 0 or not math.isfinite(options.speedup):
        raise InvalidArgument("speedup", "must be a positive number")
    if options.workers < 1:
        raise InvalidArgument("workers", "must be at least 1")
    policy = options.policy or scenario.policy or "default"
    steps = policy_named(policy).relaxation.steps
    run_id = f"s{secrets.token_hex(3)}"
    engine: OwnEngine | None = None
    if options.target:
        if options.secret is None:
            raise InvalidArgument("secret", "a --target needs its token secret "
                                  "(SURGEDESK_TOKEN_SECRET or --secret-file)")
        target, secret = options.target, options.secret
    else:
        engine = OwnEngine(scenario, options, policy)
        engine.start()
        target, secret = engine.address, engine.secret
    try:
        asyncio.run(configure_desk(target, secret, population, policy, run_id))
        ctx = mp.get_context("spawn")
        shared = Shared.create(ctx, population.customers)
        k = options.speedup
        duration_wall = population.duration_s / k
        n = options.workers
        lead_s = 4.0 + 0.5 * n  # workers start and the first shift signs on before time 0
        t0 = time.time() + lead_s
        if options.plan_known:  # the engine's clock runs k times faster from ORIGIN_S
            asyncio.run(set_roster(target, secret, population, run_id,
                                   ORIGIN_S + (t0 - ORIGIN_S) * k))
        end_s = t0 + duration_wall
        give_up_at = end_s + options.drain_s
        out = ctx.Queue()
        procs = []
        for w in range(n):
            plan = WorkerPlan(
                worker=w, target=target, secret=secret, run_id=run_id, speedup=k, t0=t0,
                end_s=end_s, give_up_at=give_up_at,
                customers=tuple(range(w, len(population.customers), n)),
                agents=tuple(range(w, len(population.agents), n)),
                relax_after_s=steps, shift_end=scenario.process.shift_end,
                wrap_up_s=scenario.process.wrap_up_s, seed=scenario.seed, greet=options.greet)
            proc = ctx.Process(target=run_worker, args=(plan, population.customers,
                                                         population.agents, shared, out))
            proc.start()
            procs.append(proc)
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        usage: list[tuple[float, float, int, float]] = []
        engine_pid = engine.pids() if engine else None
        while len(results) + len(failures) < n:
            with contextlib.suppress(Exception):
                status, worker, payload = out.get(timeout=0.5)
                (results if status == "ok" else failures).append(payload)
            now = time.time()
            if progress is not None:
                progress(min(max(0.0, (now - t0) * k), population.duration_s), population.duration_s)
            if engine_pid:
                usage.append(((now - t0) * k, now, process_rss_bytes(engine_pid),
                              process_cpu_seconds(engine_pid)))
            if now > give_up_at + 120 and not any(p.is_alive() for p in procs):
                break
        for proc in procs:
            proc.join(30)
        if failures:
            raise RuntimeError(f"surge worker failed: {failures[0]}")
        acked = [f"{run_id}-{c.customer_id}" for i, c in enumerate(population.customers)
                 if shared.acked[i] == 1]
        known = asyncio.run(engine_knows(target, secret, acked))
        engine_lag: dict[str, float] = {}
        engine_coverage: dict[str, dict[str, float]] = {}
        if engine is not None:
            metrics = scrape(engine.metrics_url)
            engine_coverage = scrape_coverage(metrics)
            buckets = scrape_histogram(metrics, "surgedesk_dispatch_lag_seconds")
            engine_lag = {"p50": histogram_quantile(buckets, 0.5) * 1000,
                          "p99": histogram_quantile(buckets, 0.99) * 1000,
                          "count": buckets[-1][1] if buckets else 0}
    finally:
        if engine is not None:
            engine.stop()
    return {"shared": shared, "t0": t0, "run_id": run_id, "known": known, "workers": results,
            "engine_lag_ms": engine_lag, "engine_coverage": engine_coverage,
            "target": options.target or "own engine",
            "policy": policy, "usage": usage}


def engine_waits_of(records: Sequence[CustomerRecord],
                    raw: dict[str, Any]) -> list[CustomerRecord]:
    """The records with each served customer's wait as the engine measured it (from its
    queueing to its assignment, in engine seconds; ``Assigned.waited_seconds``) instead of as
    the client saw it (which adds the round trips and the stream's delivery, 60 times longer
    in scenario seconds at 60x): the population the engine's live coverage metric judges."""
    s = raw["shared"]
    return [dataclasses.replace(r, wait_s=s.engine_wait[i])
            if r.outcome == "served" and s.engine_wait[i] > 0 else r
            for i, r in enumerate(records)]


def records_of(population: Population, raw: dict[str, Any], speedup: float) -> list[CustomerRecord]:
    """The customers as ``simulate`` records them, in scenario seconds."""
    s, run_id, known = raw["shared"], raw["run_id"], raw["known"]
    agents = population.agents
    records = []
    for i, c in enumerate(population.customers):
        rec = CustomerRecord(c.customer_id, c.skill, c.vip_tier, c.arrival_s)
        rec.queued = bool(s.queued[i])
        rec.est_p50_s, rec.est_p90_s, rec.ahead = s.est_p50[i], s.est_p90[i], s.ahead[i]
        sent = s.start_sent[i]
        if s.acked[i] != 1:  # never acknowledged: the engine promised nothing
            rec.outcome = "unanswered" if sent else "waiting"
        elif f"{run_id}-{c.customer_id}" not in known:
            rec.outcome = "lost"  # acknowledged, and then unknown
        elif s.served_at[i]:
            rec.outcome = "served"
            rec.wait_s = (s.served_at[i] - sent) * speedup
            rec.agent_id = agents[s.served_by[i] - 1].agent_id
        elif s.left_at[i]:
            rec.outcome = "abandoned"
            rec.wait_s = (s.left_at[i] - sent) * speedup
        else:
            rec.outcome = "waiting"
            rec.wait_s = max(0.0, time.time() - sent) * speedup if sent else 0.0
        records.append(rec)
    return records


def timeline_of(population: Population, raw: dict[str, Any],
                records: Sequence[CustomerRecord], speedup: float) -> list[TimelinePoint]:
    """Queue, busy capacity, arrivals and p90 wait per bin, from what the people saw."""
    s, t0 = raw["shared"], raw["t0"]
    bin_s = timeline_bin_s(max(population.duration_s, 1.0))
    bins = max(1, int(math.ceil(population.duration_s / bin_s)))
    points = []
    conversations = [(a, b) for w in raw["workers"] for a, b in w["conversations"]]
    arrivals = [0] * bins
    waits: list[list[float]] = [[] for _ in range(bins)]
    intervals = []  # scenario [from, to) a customer was waiting
    for i, rec in enumerate(records):
        b = min(bins - 1, int(rec.arrival_s // bin_s))
        arrivals[b] += 1
        sent = s.start_sent[i]
        if not sent:
            continue
        start = (sent - t0) * speedup
        end_wall = s.served_at[i] or s.left_at[i]
        end = (end_wall - t0) * speedup if end_wall else math.inf
        intervals.append((start, end))
        if rec.outcome == "served":
            sb = min(bins - 1, max(0, int(((s.served_at[i] - t0) * speedup) // bin_s)))
            waits[sb].append(rec.wait_s)
    for b in range(bins):
        t = (b + 1) * bin_s
        queued = sum(1 for a, e in intervals if a <= t < e)
        busy = sum(1 for a, e in conversations if (a - t0) * speedup <= t < (e - t0) * speedup)
        ordered = sorted(waits[b])
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else 0.0
        points.append(TimelinePoint(b * bin_s, queued, busy, arrivals[b], p90))
    return points


def agreement(surge: dict[str, Any], simulated: dict[str, Any]) -> dict[str, Any]:
    """Whether the surge's waits agree with the simulator's: each of mean, p50, p90 within
    10% or 5 scenario seconds; the service levels within 0.02."""
    out: dict[str, Any] = {"tolerance": {"relative": WAIT_TOLERANCE, "seconds": WAIT_TOLERANCE_S}}
    ok = True
    for key in ("mean", "p50", "p90"):
        a, b = surge["wait_s"][key], simulated["wait_s"][key]
        within = abs(a - b) <= max(WAIT_TOLERANCE * abs(b), WAIT_TOLERANCE_S)
        out[f"wait_{key}"] = {"surge": a, "simulate": b, "agrees": within}
        ok = ok and within
    sl_ok = (surge["service_level"] == simulated["service_level"] if None in (
        surge["service_level"], simulated["service_level"]) else
        abs(surge["service_level"] - simulated["service_level"]) <= 0.02)
    out["service_level"] = {"surge": surge["service_level"],
                            "simulate": simulated["service_level"], "agrees": sl_ok}
    out["waits_agree"] = ok
    return out


def latency_summary(workers: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    merged: dict[str, list[float]] = {}
    for w in workers:
        for method, values in w["latency_s"].items():
            merged.setdefault(method, []).extend(values)
    out = {}
    for method, values in sorted(merged.items()):
        v = sorted(values)
        out[method] = {"calls": len(v), "p50_ms": quantile(v, 0.5) * 1000,
                       "p99_ms": quantile(v, 0.99) * 1000, "max_ms": v[-1] * 1000 if v else 0.0}
    return out


def latency_timeline(workers: Sequence[dict[str, Any]], t0: float, speedup: float,
                     duration_s: float) -> list[dict[str, float]]:
    """Per timeline bin (scenario seconds): calls sent in it, their p50 and p99 (wall ms)."""
    bin_s = timeline_bin_s(max(duration_s, 1.0))
    bins: dict[int, list[float]] = {}
    for w in workers:
        for sent, took in w["calls"]:
            b = int(max(0.0, (sent - t0) * speedup) // bin_s)
            bins.setdefault(b, []).append(took)
    out = []
    for b in sorted(bins):
        v = sorted(bins[b])
        out.append({"t_s": b * bin_s, "calls": len(v), "p50_ms": quantile(v, 0.5) * 1000,
                    "p99_ms": quantile(v, 0.99) * 1000})
    return out


def client_summary(workers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    late = sorted(x for w in workers for x in w["arrival_late_s"])
    counters: dict[str, dict[str, int]] = {"retries": {}, "errors": {}}
    for w in workers:
        for kind in counters:
            for key, count in w[kind].items():
                counters[kind][key] = counters[kind].get(key, 0) + count
    return {
        "workers": len(workers),
        "arrival_late_ms": {"p50": quantile(late, 0.5) * 1000, "p99": quantile(late, 0.99) * 1000,
                            "max": late[-1] * 1000 if late else 0.0},
        "retries": counters["retries"],
        "error_samples": {k: v for w in workers for k, v in w["samples"].items()},
        "errors": counters["errors"],
        "double_assignments": sum(len(w["double_assignments"]) for w in workers),
        "over_capacity": sum(w["over_capacity"] for w in workers),
        "unqualified_assignments": sum(len(w["unqualified"]) for w in workers),
        "assigned_while_away": sum(w["assigned_while_away"] for w in workers),
        "stream_resumes": sum(w["stream_resumes"] for w in workers),
        "stream_events": sum(w["events"] for w in workers),
    }
