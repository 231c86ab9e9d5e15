"""``surgedesk plan``: staffing per interval for a scenario's target wait.

Stationary independent periods: each interval (default 15 min) is planned with the Erlang A
model (Erlang C when customers never give up) at its average arrival rate, per skill, with the
skill's mean handle time and mean patience. A slot is one unit of agent capacity; agents =
ceil(slots / capacity). Skills are planned apart, which is conservative: agents who also hold a
secondary skill only add slack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from surgedesk.benchmarks.scenario import Scenario
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.planning import servers_needed


@dataclass(frozen=True)
class PlanOptions:
    interval_s: float = 900.0
    service_level: float = 0.95
    max_abandon: float = 0.03
    capacity: int | None = None  # slots per agent; default: the scenario's most common


def _rate_between(scenario: Scenario, lo: float, hi: float) -> float:
    total = 0.0
    for seg in scenario.arrivals:
        overlap = min(hi, seg.to_s) - max(lo, seg.from_s)
        if overlap > 0:
            total += overlap * seg.rate_per_s
    return total / (hi - lo)


def plan_staffing(scenario: Scenario, options: PlanOptions | None = None) -> dict[str, Any]:
    options = options or PlanOptions()
    if scenario.trace is not None:
        raise InvalidArgument("trace", "plan works on [[arrivals]] scenarios; a trace has its own staff")
    if options.interval_s <= 0:
        raise InvalidArgument("interval_s", "must be > 0")
    capacity = options.capacity
    if capacity is None:
        caps = [g.capacity for g in scenario.agent_groups for _ in range(max(g.count, 1))]
        capacity = max(set(caps), key=caps.count) if caps else 1
    if capacity < 1:
        raise InvalidArgument("capacity", "must be >= 1")
    intervals: list[dict[str, Any]] = []
    t = 0.0
    while t < scenario.duration_s - 1e-9:
        hi = min(scenario.duration_s, t + options.interval_s)
        rate = _rate_between(scenario, t, hi)
        skills = {}
        agents_total = 0
        for spec in scenario.skills:
            lam = rate * spec.share
            patience = spec.patience.mean_s if spec.patience else math.inf
            m = servers_needed(lam, spec.handle_time.mean_s, scenario.target_wait_s,
                               options.service_level, patience, options.max_abandon)
            agents = math.ceil(m.servers / capacity)
            agents_total += agents
            skills[spec.name] = {
                "arrival_rate_per_s": lam,
                "offered_load": m.offered_load,
                "slots": m.servers,
                "agents": agents,
                "service_level": m.service_level,
                "p_wait": m.p_wait,
                "mean_wait_s": m.mean_wait_s,
                "p_abandon": m.p_abandon,
                "occupancy": m.occupancy,
            }
        intervals.append({"from_s": t, "to_s": hi, "arrival_rate_per_s": rate,
                          "agents": agents_total, "skills": skills})
        t = hi
    agent_seconds = sum((i["to_s"] - i["from_s"]) * i["agents"] for i in intervals)
    return {
        "scenario": scenario.name,
        "target_wait_s": scenario.target_wait_s,
        "service_level_target": options.service_level,
        "max_abandon": options.max_abandon,
        "capacity_per_agent": capacity,
        "interval_s": options.interval_s,
        "model": "Erlang A per skill and interval (Erlang C where customers never give up)",
        "intervals": intervals,
        "peak_agents": max((i["agents"] for i in intervals), default=0),
        "agent_hours": agent_seconds / 3600.0,
    }


def plan_as_agent_groups(plan: dict[str, Any], secondary: float | None = None) -> str:
    """The plan as ``[[agent_groups]]`` TOML: one group per skill and run of equal staffing.

    With ``secondary`` (a proficiency in (0, 1)), every agent also holds the other skills at
    that proficiency, so skill relaxation can lend idle capacity across skills.
    """
    if secondary is not None and not 0.0 < secondary < 1.0:
        raise InvalidArgument("secondary", "must be in (0, 1)")
    lines: list[str] = []
    cap = plan["capacity_per_agent"]
    skills = list(plan["intervals"][0]["skills"]) if plan["intervals"] else []
    for skill in skills:
        runs: list[list[float]] = []
        for iv in plan["intervals"]:
            n = iv["skills"][skill]["agents"]
            if runs and runs[-1][2] == n and runs[-1][1] == iv["from_s"]:
                runs[-1][1] = iv["to_s"]
            else:
                runs.append([iv["from_s"], iv["to_s"], n])
        for lo, hi, n in runs:
            if n <= 0:
                continue
            held = [f"{skill} = 1.0"]
            if secondary is not None:
                held += [f"{other} = {secondary:g}" for other in skills if other != skill]
            lines += ["[[agent_groups]]", f"count = {int(n)}", f"skills = {{ {', '.join(held)} }}",
                      f"capacity = {cap}", f"from_s = {lo:g}", f"to_s = {hi:g}", ""]
    return "\n".join(lines)
