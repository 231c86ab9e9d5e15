"""The dispatcher's snapshot: a routing core's whole state as a versioned document of plain data.

Who runs this: the dispatcher's journal (``adapters/redis/dispatch_journal.py``) when it saves
a snapshot and when a restarted dispatcher loads one; tests. Pure: no I/O, no clock.

A snapshot is what a restarted dispatcher needs to carry on exactly where the saved one stopped:
the same lines in the same order, the same agents with the same loads and ranks, the same
measured rates, the same pending timers. :func:`snapshot_of` turns a :class:`DispatcherCore`
into a document made only of ``None``, bools, ints (at most 64 bits), floats (``inf`` allowed),
strings, lists and string-keyed dicts -- what msgpack (and, but for ``inf``, JSON) carries --
and :func:`core_from` turns one back. It is not pickle: a document is data that any version
can read, and loading one runs no code of its choosing.

Format ``surgedesk.dispatcher``, version 3 (:data:`VERSION`; versions 1 and 2 are read too, see below). Only the facts are kept; every
index derived from them (lines, the per-agent sticky lines, the capacity index's free lists and
per-skill totals) is rebuilt on load, in O(n log n + a k log a):

==================  =======================================================================
key                 value
==================  =======================================================================
format, version     ``"surgedesk.dispatcher"``, ``3``
now_s               the core's clock (``-inf`` before the first event)
seq, timer_seq      the next ticket sequence number and timer sequence number
assignments_total   assignments made so far
policy              ``max_vip_tier``, ``selection`` (mode), ``relaxation`` ([after_s,
                    min_proficiency] steps), ``sticky_window_s``
estimator           ``tau_s``, ``prior_handle_s``, ``handle_s_by_skill``, ``rate_cv``
handle_priors       skill -> expected handle seconds (set by SkillConfigured)
agents              the capacity index's agents, in creation order: [agent_id, seq,
                    {skill: proficiency}, capacity, available, last_assigned_s,
                    [[ticket_id, skill, since_s], ...]]
next_agent_seq      the capacity index's next agent sequence number
declared            [agent_id, {skill: proficiency}, capacity, available]: agents as they
                    declared themselves, before wrap-up and pauses are taken off
wrapping            agent -> wrap-up end times; paused_until: agent -> end of its pause
waiting, held       tickets in line (or waiting for a preferred agent) and tickets an agent
                    holds: [ticket_id, skill, vip_tier, [class, due_us, seq], arrival_s,
                    queued_s, preferred_agent_id or None, prefer_until_s, in_line,
                    deadline_s or None]; the key's parts are those of
                    :func:`surgedesk.engine.queues.pack_key`
flows               each skill's measured flow (:class:`SkillFlow` fields; per-tier maps as
                    [tier, value] pairs), with ``busy_backlog_time`` (version 2) and
                    ``patience`` (version 3): the patience meter's counts, ``tau_s``,
                    ``epoch_s``, ``advanced_s``, ``abandons`` and ``exposure`` per band of
                    time waited (:mod:`surgedesk.engine.patience`)
timers              the pending timers, [at_s, seq, kind, ident], in order (a sorted list is
                    a heap); timers already stale are left out, so that two cores in the same
                    state save the same document however often each looked at its next
                    wake-up (which drops stale timers); wake_at: skill -> its live wake timer
roster              (version 2) the staffing plan ahead: [agent_id, {skill: proficiency},
                    capacity, start_s, end_s] per planned shift (:mod:`surgedesk.engine.roster`)
undelivered         assignments made by timers of a call that then failed, still to be
                    returned: ["AssignTicket", ticket_id, agent_id, skill, waited_s,
                    from_agent_id] or ["ReturnTicket", ticket_id, agent_id, skill]
==================  =======================================================================

Version 2 adds each flow's ``busy_backlog_time`` (the busy slots integrated over the time a
ticket waited, which :meth:`SkillFlow.capacity_change` compares the busy slots of now with) and
the ``roster``. A version-1 document restores with no roster and each flow's
``busy_backlog_time`` taken as its average busy slots times its backlog time (the average while
a ticket waited taken to be the average overall), from which the flow's own measurement then
carries on.

Version 3 adds each flow's ``patience``. Its per-ticket bookkeeping is not kept: it is rebuilt
from the waiting tickets' ``queued_s`` (each put in the band of time waited it had reached by
``advanced_s``). A version-1 or -2 document restores with a meter that has measured nothing yet
(every band says the skill's overall rate of giving up until it has), its waiting tickets
counted from the flow's ``last_s`` on.

A later version adds keys or a new version number; :func:`core_from` refuses a document of a
format or version it does not know (``InvalidArgument`` naming ``snapshot.version``) rather than
guess. ``tests/fixtures/`` keeps a snapshot of each version that every later one must restore.
"""

from __future__ import annotations

import heapq
from typing import Any

from surgedesk.engine.capacity import AgentState
from surgedesk.engine.dispatcher import DispatcherCore, EstimatorConfig, WaitingTicket
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.estimator import SkillFlow
from surgedesk.engine.events import AssignTicket, Command, ReturnTicket
from surgedesk.engine.patience import BANDS, PatienceMeter
from surgedesk.engine.policies import (
    AgentSelection,
    PriorityPolicy,
    RelaxationSteps,
    RoutingPolicy,
    StickyPolicy,
)
from surgedesk.engine.queues import key_from_parts, key_parts
from surgedesk.engine.roster import PlannedShift, Roster

FORMAT = "surgedesk.dispatcher"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

Document = dict[str, Any]

_FLOW_SCALARS = ("skill", "tau_s", "prior_handle_s", "prior_weight", "prior_backlog_s", "last_s",
                 "busy", "waiting", "completions", "busy_time", "abandons", "wait_time",
                 "observed_s", "top_tier")
_FLOW_TIER_MAPS = ("waiting_by_tier", "arrivals_by_tier", "dequeues", "backlog_ge")


def snapshot_of(core: DispatcherCore) -> Document:
    """The core's state as a version-3 document. O(waiting + held + agents k + timers log
    timers)."""
    policy, estimator, capacity = core.policy, core.estimator, core.capacity
    return {
        "format": FORMAT,
        "version": VERSION,
        "now_s": core._now_s,
        "seq": core._seq,
        "timer_seq": core._timer_seq,
        "assignments_total": core.assignments_total,
        "policy": {
            "max_vip_tier": policy.priority.max_vip_tier,
            "selection": policy.selection.mode,
            "relaxation": [[a, p] for a, p in policy.relaxation.steps],
            "sticky_window_s": policy.sticky.window_s,
        },
        "estimator": {
            "tau_s": estimator.tau_s,
            "prior_handle_s": estimator.prior_handle_s,
            "handle_s_by_skill": dict(estimator.handle_s_by_skill),
            "rate_cv": estimator.rate_cv,
        },
        "handle_priors": dict(core._handle_priors),
        "agents": [[a.agent_id, a.seq, dict(a.skills), a.capacity, a.available,
                    a.last_assigned_s, [[tid, skill, since] for tid, (skill, since)
                                        in a.active.items()]]
                   for a in capacity.agents()],
        "next_agent_seq": capacity._next_seq,
        "declared": [[agent_id, dict(skills), cap, available]
                     for agent_id, (skills, cap, available) in core._declared.items()],
        "wrapping": {agent_id: list(ends) for agent_id, ends in core._wrapping.items()},
        "paused_until": dict(core._paused_until),
        "waiting": [_ticket_row(t) for t in core._tickets.values()],
        "held": [_ticket_row(t) for t in core._held.values()],
        "flows": [_flow_doc(flow) for flow in core._flows.values()],
        "timers": [list(timer) for timer in sorted(core._timers) if core._timer_live(timer)],
        "wake_at": dict(core._wake_at),
        "undelivered": [command_row(c) for c in core._undelivered],
        "roster": [[p.agent_id, dict(p.skills), p.capacity, p.start_s, p.end_s]
                   for p in core.roster.shifts],
    }


def core_from(doc: Document) -> DispatcherCore:
    """A core in exactly the state :func:`snapshot_of` saw. O(n log n + a k log a + timers).

    Raises :class:`InvalidArgument` for a document of another format or an unknown version."""
    if doc.get("format") != FORMAT:
        raise InvalidArgument("snapshot.format", f"expected {FORMAT!r}, got {doc.get('format')!r}")
    version = doc.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise InvalidArgument("snapshot.version", f"this engine reads versions "
                              f"{', '.join(map(str, READABLE_VERSIONS))}, got {version!r}")
    p, e = doc["policy"], doc["estimator"]
    policy = RoutingPolicy(
        priority=PriorityPolicy(int(p["max_vip_tier"])),
        selection=AgentSelection(str(p["selection"])),
        relaxation=RelaxationSteps(tuple((float(a), float(m)) for a, m in p["relaxation"])),
        sticky=StickyPolicy(float(p["sticky_window_s"])),
    )
    estimator = EstimatorConfig(tau_s=float(e["tau_s"]), prior_handle_s=float(e["prior_handle_s"]),
                                handle_s_by_skill=dict(e["handle_s_by_skill"]),
                                rate_cv=float(e["rate_cv"]))
    core = DispatcherCore(policy, estimator)
    core._now_s = float(doc["now_s"])
    core._seq = int(doc["seq"])
    core._timer_seq = int(doc["timer_seq"])
    core.assignments_total = int(doc["assignments_total"])
    core._handle_priors = {str(k): float(v) for k, v in doc["handle_priors"].items()}

    for agent_id, seq, skills, capacity, available, last_assigned_s, active in doc["agents"]:
        core.capacity.restore(AgentState(
            agent_id, {str(s): float(v) for s, v in skills.items()}, int(capacity),
            bool(available), int(seq), float(last_assigned_s),
            {str(tid): (str(skill), float(since)) for tid, skill, since in active}))
    core.capacity.restore_next_seq(int(doc["next_agent_seq"]))
    core._declared = {str(agent_id): ({str(s): float(v) for s, v in skills.items()},
                                      int(cap), bool(available))
                      for agent_id, skills, cap, available in doc["declared"]}
    core._wrapping = {str(a): [float(x) for x in ends] for a, ends in doc["wrapping"].items()}
    core._paused_until = {str(a): float(x) for a, x in doc["paused_until"].items()}

    for row in doc["waiting"]:
        t = _ticket_from(row)
        core._tickets[t.ticket_id] = t
        if t.in_line:
            core._line(t.skill).add(t.key, t.ticket_id)
        elif t.preferred_agent_id is not None:
            core._preferred_queue(t.preferred_agent_id).add(t.key, t.ticket_id)
        else:
            raise InvalidArgument("snapshot.waiting", f"{t.ticket_id} is neither in line nor "
                                  "waiting for an agent")
    core._held = {t.ticket_id: t for t in map(_ticket_from, doc["held"])}
    core._flows = {flow.skill: flow for flow in map(_flow_from, doc["flows"])}
    waiting_by_skill: dict[str, list[tuple[float, str]]] = {}
    for t in core._tickets.values():
        waiting_by_skill.setdefault(t.skill, []).append((t.queued_s, t.ticket_id))
    for skill, flow in core._flows.items():
        flow.patience.restore_waiting(waiting_by_skill.get(skill, ()))
    timers = [(float(at), int(seq), int(kind), str(ident)) for at, seq, kind, ident in doc["timers"]]
    heapq.heapify(timers)  # already a heap as saved; heapify keeps that order and checks it
    core._timers = timers
    core._wake_at = {str(k): float(v) for k, v in doc["wake_at"].items()}
    core._undelivered = [command_from(row) for row in doc["undelivered"]]
    core.roster = Roster(PlannedShift(str(agent_id), {str(k): float(v) for k, v in skills.items()},
                                      int(capacity), float(start_s), float(end_s))
                         for agent_id, skills, capacity, start_s, end_s in doc.get("roster", ()))
    return core


def _ticket_row(t: WaitingTicket) -> list[Any]:
    return [t.ticket_id, t.skill, t.vip_tier, list(key_parts(t.key)), t.arrival_s, t.queued_s,
            t.preferred_agent_id, t.prefer_until_s, t.in_line, t.deadline_s]


def _ticket_from(row: list[Any]) -> WaitingTicket:
    (ticket_id, skill, vip_tier, key, arrival_s, queued_s, preferred, prefer_until_s, in_line,
     deadline_s) = row
    cls, due_us, seq = key
    return WaitingTicket(str(ticket_id), str(skill), int(vip_tier),
                         key_from_parts(int(cls), int(due_us), int(seq)), float(arrival_s),
                         float(queued_s), None if preferred is None else str(preferred),
                         float(prefer_until_s), bool(in_line),
                         None if deadline_s is None else float(deadline_s))


def _flow_doc(flow: SkillFlow) -> dict[str, Any]:
    doc: dict[str, Any] = {name: getattr(flow, name) for name in _FLOW_SCALARS}
    doc["busy_backlog_time"] = flow.busy_backlog_time
    for name in _FLOW_TIER_MAPS:
        doc[name] = [[tier, value] for tier, value in getattr(flow, name).items()]
    meter = flow.patience
    doc["patience"] = {"tau_s": meter.tau_s, "epoch_s": meter.epoch_s,
                       "advanced_s": meter.advanced_s, "abandons": list(meter.abandons),
                       "exposure": list(meter.exposure)}
    return doc


def _flow_from(doc: dict[str, Any]) -> SkillFlow:
    flow = SkillFlow()
    if "busy_backlog_time" in doc:
        flow.busy_backlog_time = float(doc["busy_backlog_time"])
    else:  # version 1: the average busy slots while tickets waited taken as the average
        observed, backlog = float(doc["observed_s"]), dict(doc["backlog_ge"]).get(0, 0.0)
        flow.busy_backlog_time = (float(doc["busy_time"]) / observed * float(backlog)
                                  if observed > 0 else 0.0)
    for name in _FLOW_SCALARS:
        value = doc[name]
        if name == "skill":
            value = str(value)
        elif name in ("busy", "waiting", "top_tier"):
            value = int(value)
        elif value is not None:
            value = float(value)
        setattr(flow, name, value)
    for name in _FLOW_TIER_MAPS:
        kind = int if name == "waiting_by_tier" else float
        setattr(flow, name, {int(tier): kind(value) for tier, value in doc[name]})
    patience = doc.get("patience")
    meter = flow.patience = PatienceMeter()
    if patience is not None:
        meter.tau_s = float(patience["tau_s"])
        meter.epoch_s = float(patience["epoch_s"])
        meter.advanced_s = float(patience["advanced_s"])
        if len(patience["abandons"]) != BANDS or len(patience["exposure"]) != BANDS:
            raise InvalidArgument("snapshot.flows.patience", f"{BANDS} bands expected")
        meter.abandons = [float(x) for x in patience["abandons"]]
        meter.exposure = [float(x) for x in patience["exposure"]]
    elif flow.last_s is not None:  # before version 3: nothing measured, from now on
        meter.advanced_s = flow.last_s
    return flow


def command_row(command: Command) -> list[Any]:
    """An assignment or a return as a row of plain data (snapshots, the decisions stream)."""
    if isinstance(command, AssignTicket):
        return ["AssignTicket", command.ticket_id, command.agent_id, command.skill,
                command.waited_s, command.from_agent_id]
    return ["ReturnTicket", command.ticket_id, command.agent_id, command.skill]


def command_from(row: list[Any]) -> Command:
    """The command of :func:`command_row`'s row."""
    if row[0] == "AssignTicket":
        return AssignTicket(str(row[1]), str(row[2]), str(row[3]), float(row[4]), str(row[5]))
    if row[0] == "ReturnTicket":
        return ReturnTicket(str(row[1]), str(row[2]), str(row[3]))
    raise InvalidArgument("snapshot.undelivered", f"unknown command {row[0]!r}")
