"""Replay of a real call-centre log (format ``anonymous-bank``, described in data/README.md).

Each call that reached the queue becomes a customer arriving at ``q_start``: skill from ``type``,
VIP tier from ``priority``, handle time from ``ser_time``, and patience from ``q_time`` for calls
that hung up (``HANG``) or vanished (``PHANTOM``); served calls never give up. Calls that reached an
agent without queueing (``q_start`` 0:00:00) also occupied an agent, so they arrive at
``ser_start`` -- leaving them out would make the desk look emptier than it was. Customers who hung
up have no service time of their own; if the simulated desk reaches them in time they take a
handle time drawn from the served calls of the same type.

With ``agents = "from-trace"`` every ``server`` becomes one agent per day, with capacity 1 (a
phone line), the types it served that day as primary skills, and a shift from its first service
start to its last service end. Time 0 is midnight of the first selected day; ``time_scale``
multiplies every instant (not durations), so 0.1 replays a day ten times compressed.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from datetime import date

from surgedesk.benchmarks.people import AgentPlan, Customer, Population
from surgedesk.benchmarks.scenario import Scenario
from surgedesk.engine.errors import InvalidArgument

COLUMNS = ("priority", "type", "date", "q_start", "q_time", "outcome", "ser_start", "ser_exit",
           "ser_time", "server")


def _clock(value: str) -> int:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + int(s)


def trace_population(scenario: Scenario) -> Population:
    spec = scenario.trace
    assert spec is not None
    rng = random.Random(scenario.seed)
    with spec.path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument("trace.path", f"not an anonymous-bank log: missing {missing}")
        rows = list(reader)
    all_days = sorted({r["date"] for r in rows})
    days = list(spec.days) if spec.days else all_days
    for d in days:
        if d not in all_days:
            raise InvalidArgument("trace.days", f"no calls on {d!r} in the log")
    first = date.fromisoformat(min(days))
    offset = {d: (date.fromisoformat(d) - first).days * 86400 for d in days}
    scale = spec.time_scale

    served_by_type: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["outcome"] == "AGENT" and int(r["ser_time"]) > 0:
            served_by_type[r["type"]].append(float(r["ser_time"]))

    customers: list[tuple[float, Customer]] = []
    shifts: dict[tuple[str, str], list[float]] = {}
    skills_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    day_set = set(days)
    for r in sorted(rows, key=lambda r: (r["date"], r["q_start"], r["ser_start"])):
        if r["date"] not in day_set:
            continue
        queued = r["q_start"] != "0:00:00"
        outcome = r["outcome"]
        if not queued and outcome != "AGENT":
            continue  # hung up in the voice menu: never reached the queue
        base = offset[r["date"]]
        arrival = (base + _clock(r["q_start"] if queued else r["ser_start"])) * scale
        skill = r["type"]
        if outcome == "AGENT":
            handle = max(1.0, float(r["ser_time"]))
            patience = math.inf
            server = r["server"]
            if server != "NO_SERVER" and r["ser_start"] != "0:00:00" and int(r["ser_time"]) > 0:
                start = (base + _clock(r["ser_start"])) * scale
                end = (base + _clock(r["ser_exit"])) * scale
                key = (server, r["date"])
                span = shifts.setdefault(key, [start, end])
                span[0] = min(span[0], start)
                span[1] = max(span[1], end)
                skills_of[key].add(skill)
        else:
            pool = served_by_type.get(skill) or [180.0]
            handle = rng.choice(pool)
            patience = max(0.0, float(r["q_time"]))
        customers.append((arrival, Customer("", skill, int(r["priority"]), arrival, handle, patience)))
    customers.sort(key=lambda c: c[0])
    numbered = tuple(
        Customer(f"c{i}", c.skill, c.vip_tier, c.arrival_s, c.handle_s, c.patience_s)
        for i, (_, c) in enumerate(customers)
    )
    skills = tuple(sorted({c.skill for c in numbered}))
    if spec.agents == "from-trace":
        agents = tuple(
            AgentPlan(f"{server}@{day}", {s: 1.0 for s in sorted(skills_of[(server, day)])}, 1,
                      span[0], span[1])
            for (server, day), span in sorted(shifts.items())
        )
    else:
        agents = tuple(
            AgentPlan(f"g{gi}-a{j}", dict(g.skills), g.capacity, g.from_s, g.to_s,
                      g.planned_to_s)
            for gi, g in enumerate(scenario.agent_groups)
            for j in range(g.count)
        )
    for a in agents:
        for s in a.skills:
            if s not in skills and spec.agents != "from-trace":
                raise InvalidArgument("agent_groups.skills", f"{s!r} is not a type in the trace")
    duration = max((c.arrival_s for c in numbered), default=0.0)
    if scenario.duration_s:
        duration = scenario.duration_s
    handle_mean = {
        s: (sum(v) / len(v) if (v := served_by_type.get(s)) else 180.0) for s in skills
    }
    return Population(numbered, agents, skills, duration, handle_mean)
