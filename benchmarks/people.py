"""The people of a scenario: its customers, the agents who serve them, and the two together.

Plain values, made by :func:`surgedesk.benchmarks.population.build_population` (drawn from a
scenario's distributions) or :func:`surgedesk.benchmarks.trace.trace_population` (read from a
real log), and read by the simulator, the surge clients and the reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    skill: str
    vip_tier: int
    arrival_s: float
    handle_s: float
    patience_s: float  # math.inf: never gives up
    # After ``follow_after_s`` of handling, the conversation is transferred to (or becomes a
    # work order for) ``follow_skill``, where it takes ``follow_handle_s`` more.
    follow_up: str = ""  # "" | "transfer" | "work_order"
    follow_skill: str = ""
    follow_after_s: float = 0.0
    follow_handle_s: float = 0.0
    priority: str = ""  # work orders: high | medium | low


@dataclass(frozen=True, slots=True)
class AgentPlan:
    agent_id: str
    skills: Mapping[str, float]
    capacity: int
    from_s: float
    to_s: float  # math.inf: until the run ends
    planned_to_s: float | None = None  # the end the staffing plan says (None: to_s); an
    #                                    earlier to_s is a dropout the desk did not plan


@dataclass(frozen=True)
class Population:
    customers: tuple[Customer, ...]
    agents: tuple[AgentPlan, ...]
    skills: tuple[str, ...]
    duration_s: float
    handle_mean_s: Mapping[str, float]  # what the desk expects (configured AHT per skill)
