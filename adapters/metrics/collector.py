"""The engine's Prometheus metrics: what tickets counted (from Redis) and how routing stands.

Who runs this: the gateway process (``surgedesk serve``), which serves ``/metrics``.

Values must be right across processes and restarts, so nothing here counts in memory what the
journal already knows: ticket outcomes, alarms, breaches, ratings and the queue-wait histogram
are totals in Redis, incremented in the same atomic step that journals the event they count
(:mod:`surgedesk.engine.outcomes`); a gateway that restarts neither resets nor doubles them.
Gauges (lines, capacity, estimates) come from the dispatcher's own statistics; agents by status from
the presence index the agent actors keep in Redis; the estimates' honesty from the windows of
outcomes in Redis (:mod:`surgedesk.adapters.redis.calibration_window`). Only what is the gateway's own -- its gRPC
calls and the dispatch lag it sees -- lives in this process's registry.

Scrapes must not wait on Ray or Redis, so :class:`DeskMetrics` refreshes a snapshot every
``refresh_s`` on the gateway's event loop and :meth:`DeskMetrics.collect` (called on the HTTP
server's thread) only reads the latest one. O(skills + counters) per refresh and per scrape.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from surgedesk.adapters.archive.archiver import ArchiverStats
from surgedesk.adapters.redis.calibration_window import SkillCoverage
from surgedesk.engine.agent import PRESENCES
from surgedesk.engine.outcomes import WAIT_BUCKETS_S

PREFIX = "surgedesk_"

# Counters kept in Redis: name (without prefix and _total) -> (help, label names).
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tickets": ("Tickets by outcome: opened, served (reached an agent from a line), abandoned, "
                "transferred, requeued, resolved, closed, closed_unconfirmed, system_closed.",
                ("outcome",)),
    "slow_reply_alarms": ("Slow-reply alarms raised (an agent owed a reply past the threshold).",
                          ("skill",)),
    "work_orders": ("Work orders created.", ("department", "priority")),
    "work_order_sla_breaches": ("Work orders still open at their SLA deadline.",
                                ("department", "priority")),
    "ratings": ("Satisfaction ratings after close, by score 1-5.", ("score",)),
    "notices": ("Notices sent: silence reminders, queue warnings.", ("code",)),
    "offers": ("Offer-mode outcomes: offered, accepted, declined, timeout, closed.", ("outcome",)),
    "messages": ("Chat messages by author role.", ("author_role",)),
}

MIN_COVERAGE_OUTCOMES = 20  # fewer outcomes than this say too little to publish a coverage

DISPATCH_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                          5.0, 10.0)


class ArchiverView(Protocol):
    """What the metrics read of the gateway's archiver."""

    stats: ArchiverStats


@dataclass
class Snapshot:
    at_s: float = 0.0
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    skills: list[dict[str, Any]] = field(default_factory=list)
    presence: dict[str, int] = field(default_factory=dict)
    calibration: dict[str, SkillCoverage] = field(default_factory=dict)
    redis_memory_bytes: float | None = None  # Redis's used_memory
    ended_in_redis: int = 0  # ended tickets still in Redis (in their grace, or not yet moved)
    ok: bool = False


class DeskMetrics(Collector):
    """The engine's collector; register it and run :meth:`refresh_forever`."""

    def __init__(self, desk: Any, refresh_s: float = 1.0,
                 archiver: ArchiverView | None = None) -> None:
        self.desk = desk
        self.archiver = archiver
        self.refresh_s = refresh_s
        self.snapshot = Snapshot()
        self.dispatch_lag = Histogram(
            f"{PREFIX}dispatch_lag_seconds",
            "From the fact that freed capacity or queued a ticket reaching the gateway to the "
            "assignment delivered to the ticket.", buckets=DISPATCH_LAG_BUCKETS_S,
            registry=None)
        self.refresh_failures = 0

    async def refresh(self) -> Snapshot:
        """Read counters, presence and routing statistics into a new snapshot."""
        counters = await self.desk.counters()
        skills = await self.desk.dispatcher.skill_report()
        presence = {**dict.fromkeys(PRESENCES, 0), **await self.desk.catalogue.presence_counts()}
        calibration = await self.desk.routing.calibration.coverage()
        memory = await self.desk.redis_memory_bytes()
        ended = await self.desk.journal.ended_in_redis()
        self.snapshot = Snapshot(time.time(), counters, skills, presence, calibration,
                                 None if memory is None else float(memory), ended, ok=True)
        return self.snapshot

    async def refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a restarting host answers next time
                self.refresh_failures += 1
            await asyncio.sleep(self.refresh_s)

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        queue = GaugeMetricFamily(f"{PREFIX}queue_length", "Tickets waiting in line, by skill.",
                                  labels=["skill"])
        busy = GaugeMetricFamily(f"{PREFIX}capacity_busy_ratio",
                                 "Busy conversation slots over the slots of available agents "
                                 "who serve the skill.", labels=["skill"])
        # Quantiles of a predicted wait distribution: typed summary (without _sum and _count, as
        # nothing is observed) so that the ``quantile`` label is used as Prometheus intends.
        estimate = Metric(
            f"{PREFIX}estimated_wait_seconds",
            "The wait a regular customer arriving now is told, as quantiles 0.5 and 0.9 of the "
            "predicted wait; absent while nobody serves the skill.", "summary")
        slots = GaugeMetricFamily(f"{PREFIX}capacity_slots",
                                  "Conversation slots of available agents serving the skill.",
                                  labels=["skill"])
        for row in snap.skills:
            skill = str(row["skill"])
            queue.add_metric([skill], float(row["waiting"]))
            slots.add_metric([skill], float(row["serving_slots"]))
            if row["serving_slots"]:
                busy.add_metric([skill], row["busy_slots"] / row["serving_slots"])
            for q, key in (("0.5", "wait_p50_s"), ("0.9", "wait_p90_s")):
                if math.isfinite(row[key]):
                    estimate.add_sample(f"{PREFIX}estimated_wait_seconds",
                                        {"skill": skill, "quantile": q}, float(row[key]))
        yield from (queue, busy, estimate, slots)

        # How honest the estimates were, over each skill's latest outcomes: P(wait had they
        # stayed <= the quantile they were told), abandonment counted as censoring.
        honesty = GaugeMetricFamily(
            f"{PREFIX}estimate_coverage_ratio",
            "Of the latest customers of the skill who were told a wait, the share whose wait "
            "(had they stayed: those who left count as censored, Kaplan-Meier) was within the "
            "quantile they were told; honest is about 0.5 and 0.9. Absent below "
            f"{MIN_COVERAGE_OUTCOMES} outcomes.", labels=["quantile", "skill"])
        outcomes = GaugeMetricFamily(
            f"{PREFIX}estimate_coverage_outcomes",
            "Outcomes in the skill's window of estimate coverage (served or gone unserved).",
            labels=["skill"])
        for skill, cov in sorted(snap.calibration.items()):
            outcomes.add_metric([skill], float(cov.outcomes))
            if cov.outcomes < MIN_COVERAGE_OUTCOMES:
                continue
            for q, value in (("0.5", cov.p50), ("0.9", cov.p90)):
                if value is not None:
                    honesty.add_metric([q, skill], value)
        yield from (honesty, outcomes)

        if snap.redis_memory_bytes is not None:
            yield GaugeMetricFamily(f"{PREFIX}redis_memory_bytes",
                                    "Memory Redis uses (INFO used_memory): live state, bounded "
                                    "once ended tickets move to the archive.",
                                    value=snap.redis_memory_bytes)
        yield GaugeMetricFamily(f"{PREFIX}archive_pending_tickets",
                                "Ended tickets still in Redis: in their grace, or not yet moved "
                                "to the archive.", value=float(snap.ended_in_redis))
        if self.archiver is not None:
            stats = self.archiver.stats
            yield CounterMetricFamily(f"{PREFIX}archived_tickets",
                                      "Ended tickets this gateway moved to the archive.",
                                      value=float(stats.archived))
            yield CounterMetricFamily(f"{PREFIX}archive_failures",
                                      "Archiver passes that failed (database or Redis away); "
                                      "the next pass tries again.", value=float(stats.failed))
            yield GaugeMetricFamily(f"{PREFIX}archive_lag_seconds",
                                    "How long the oldest ended ticket due for the archive has "
                                    "waited past its grace.", value=stats.lag_s)

        agents = GaugeMetricFamily(f"{PREFIX}agents", "Agents by presence status.",
                                   labels=["status"])
        for status in PRESENCES:
            agents.add_metric([status], float(snap.presence.get(status, 0)))
        yield agents

        families = {name: CounterMetricFamily(f"{PREFIX}{name}", text, labels=list(labels))
                    for name, (text, labels) in COUNTERS.items()}
        waits: dict[str, dict[str, float]] = {}
        wait_sum: dict[str, float] = {}
        for (metric, labels), value in sorted(snap.counters.items()):
            if metric.endswith("_total") and metric[:-6] in families:
                family = families[metric[:-6]]
                names = COUNTERS[metric[:-6]][1]
                by_name = dict(labels)
                family.add_metric([by_name.get(n, "") for n in names], value)
            elif metric == "queue_wait_seconds_bucket":
                by_name = dict(labels)
                waits.setdefault(by_name["skill"], {})[by_name["le"]] = value
            elif metric == "queue_wait_seconds_sum":
                wait_sum[dict(labels)["skill"]] = value
        yield from families.values()

        histogram = HistogramMetricFamily(
            f"{PREFIX}queue_wait_seconds",
            "Queue wait of tickets that reached an agent (each stay in a line), by skill.",
            labels=["skill"])
        for skill, counts in sorted(waits.items()):
            cumulative, buckets = 0.0, []
            for bound in [*(f"{b:g}" for b in WAIT_BUCKETS_S), "+Inf"]:
                cumulative += counts.get(bound, 0.0)
                buckets.append((bound, cumulative))
            histogram.add_metric([skill], buckets, wait_sum.get(skill, 0.0))
        yield histogram

        yield from self.dispatch_lag.collect()
        up = GaugeMetricFamily(f"{PREFIX}metrics_snapshot_age_seconds",
                               "Seconds since routing statistics were last read.")
        up.add_metric([], time.time() - snap.at_s if snap.ok else math.inf)
        yield up
