"""Customers and agents of a scenario: drawn from its distributions, or read from a trace.

Deterministic for a given scenario (its ``seed``): the same file gives the same people, so a
``simulate`` run and a ``surge`` run of one scenario meet the same customers.
"""

from __future__ import annotations

import dataclasses
import math
import random

from surgedesk.benchmarks.people import AgentPlan, Customer, Population
from surgedesk.benchmarks.scenario import Scenario, SkillSpec, TransferSpec, WorkOrderSpec
from surgedesk.benchmarks.trace import trace_population


def _with_follow_up(c: Customer, spec: SkillSpec, scenario: Scenario,
                    rng: random.Random) -> Customer:
    """Draw whether the conversation is transferred or becomes a work order."""
    u = rng.random()
    for kind, follow in (("transfer", spec.transfer), ("work_order", spec.work_order)):
        if follow is None:
            continue
        if u < follow.share:
            target = follow.to if isinstance(follow, TransferSpec) else follow.department
            more = scenario.skill(target).handle_time.sample(rng)
            return dataclasses.replace(
                c, follow_up=kind, follow_skill=target, follow_after_s=c.handle_s * follow.after,
                follow_handle_s=max(more, 0.001),
                priority=follow.priority if isinstance(follow, WorkOrderSpec) else "")
        u -= follow.share
    return c


def build_population(scenario: Scenario) -> Population:
    if scenario.trace is not None:
        return trace_population(scenario)
    rng = random.Random(scenario.seed)
    follow_rng = random.Random(scenario.seed + 7919)  # its own stream: base draws stay as they were
    customers: list[Customer] = []
    cumulative = []
    acc = 0.0
    for spec in scenario.skills:
        acc += spec.share
        cumulative.append(acc)
    n = 0
    for seg in sorted(scenario.arrivals, key=lambda s: s.from_s):
        if seg.rate_per_s <= 0:
            continue
        t = seg.from_s
        while True:
            t += rng.expovariate(seg.rate_per_s)
            if t >= seg.to_s:
                break
            u = rng.random() * acc
            spec = scenario.skills[-1]
            for i, edge in enumerate(cumulative):
                if u < edge:
                    spec = scenario.skills[i]
                    break
            vip = 1 if rng.random() < spec.vip_share else 0
            handle = spec.handle_time.sample(rng)
            patience = spec.patience.sample(rng) if spec.patience else math.inf
            customers.append(_with_follow_up(
                Customer(f"c{n}", spec.name, vip, t, max(handle, 0.001), patience),
                spec, scenario, follow_rng))
            n += 1
    agents = []
    for gi, group in enumerate(scenario.agent_groups):
        for j in range(group.count):
            agents.append(AgentPlan(f"g{gi}-a{j}", dict(group.skills), group.capacity,
                                    group.from_s, group.to_s, group.planned_to_s))
    return Population(
        customers=tuple(customers),
        agents=tuple(agents),
        skills=tuple(s.name for s in scenario.skills),
        duration_s=scenario.duration_s,
        handle_mean_s={s.name: s.handle_time.mean_s for s in scenario.skills},
    )
