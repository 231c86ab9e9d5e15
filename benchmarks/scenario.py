"""Scenario files (TOML) as described in docs/FORMATS.md, parsed strictly.

Every key is checked: an unknown key or a bad value raises
:class:`~surgedesk.engine.errors.InvalidArgument` whose ``field`` is the dotted key
(``skills[1].handle_time.cv``), never a silent default. Omitted optional keys take the defaults
docs/FORMATS.md shows.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgedesk.engine.errors import InvalidArgument

DISTRIBUTIONS = ("exponential", "lognormal", "fixed")


@dataclass(frozen=True)
class Distribution:
    """A positive duration distribution given by its mean (and cv for lognormal)."""

    dist: str
    mean_s: float
    cv: float = 1.0

    def sample(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            return self.mean_s
        if self.dist == "exponential":
            return rng.expovariate(1.0 / self.mean_s)
        sigma2 = math.log(1.0 + self.cv * self.cv)
        mu = math.log(self.mean_s) - sigma2 / 2.0
        return rng.lognormvariate(mu, math.sqrt(sigma2))


@dataclass(frozen=True)
class ArrivalSegment:
    from_s: float
    to_s: float
    rate_per_s: float


@dataclass(frozen=True)
class TransferSpec:
    """A share of this skill's conversations is transferred to skill ``to`` after ``after``
    (a fraction) of its handle time; the new skill's handle time follows."""

    share: float
    to: str
    after: float


@dataclass(frozen=True)
class WorkOrderSpec:
    """A share of this skill's conversations becomes a work order for ``department`` (a skill
    of the scenario) after ``after`` of its handle time."""

    share: float
    department: str
    priority: str
    after: float


@dataclass(frozen=True)
class SkillSpec:
    name: str
    share: float
    vip_share: float
    handle_time: Distribution
    patience: Distribution | None
    transfer: TransferSpec | None = None
    work_order: WorkOrderSpec | None = None


@dataclass(frozen=True)
class ProcessSpec:
    """How agents behave beyond serving (the ``[process]`` table; all optional).

    ``offer_timeout_s`` > 0 turns on offer mode: each offer is declined with probability
    ``decline_share`` (after ``decide_s``), lapses with probability ``miss_share`` (after the
    timeout), else is accepted after ``decide_s``. ``offer_misses_to_away`` lapses in a row set
    an agent away for ``away_s``. ``shift_end`` is ``"hand-over"`` (an agent leaving hands its
    conversations over, as EndShift does) or ``"finish"`` (finishes them first)."""

    offer_timeout_s: float = 0.0
    decline_share: float = 0.0
    miss_share: float = 0.0
    decide_s: float = 0.0
    offer_misses_to_away: int = 3
    offer_pause_s: float = 10.0
    away_s: float = 120.0
    wrap_up_s: float = 0.0
    shift_end: str = "finish"
    work_order_sla_s: Mapping[str, float] = field(
        default_factory=lambda: {"high": 7200.0, "medium": 14400.0, "low": 28800.0})


@dataclass(frozen=True)
class AgentGroup:
    count: int
    skills: Mapping[str, float]
    capacity: int
    from_s: float
    to_s: float  # math.inf: until the run ends
    planned_to_s: float | None = None  # the plan's end when the group leaves unplanned


@dataclass(frozen=True)
class TraceSpec:
    path: Path
    format: str
    days: tuple[str, ...] | None
    time_scale: float
    agents: str | None  # "from-trace" or None


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    seed: int
    target_wait_s: float
    arrivals: tuple[ArrivalSegment, ...]
    skills: tuple[SkillSpec, ...]
    agent_groups: tuple[AgentGroup, ...]
    trace: TraceSpec | None = None
    policy: str | None = None
    source: Path | None = field(default=None, compare=False)
    process: ProcessSpec = field(default_factory=ProcessSpec)

    def skill(self, name: str) -> SkillSpec:
        for s in self.skills:
            if s.name == name:
                return s
        raise KeyError(name)


# ---------------------------------------------------------------- helpers
def _check_keys(table: Mapping[str, Any], where: str, allowed: set[str], required: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise InvalidArgument(
                _join(where, key), f"unknown key; expected one of {', '.join(sorted(allowed))}"
            )
    for key in sorted(required):
        if key not in table:
            raise InvalidArgument(_join(where, key), "is required")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _number(table: Mapping[str, Any], key: str, where: str, *, default: float | None = None,
            minimum: float | None = None, positive: bool = False, maximum: float | None = None) -> float:
    name = _join(where, key)
    if key not in table:
        if default is None:
            raise InvalidArgument(name, "is required")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(name, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgument(name, "must be finite")
    if positive and value <= 0:
        raise InvalidArgument(name, f"must be > 0, got {value:g}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(name, f"must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise InvalidArgument(name, f"must be <= {maximum:g}, got {value:g}")
    return value


def _integer(table: Mapping[str, Any], key: str, where: str, *, default: int | None = None,
             minimum: int = 0) -> int:
    name = _join(where, key)
    if key not in table:
        if default is None:
            raise InvalidArgument(name, "is required")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgument(name, f"must be >= {minimum}, got {value}")
    return value


def _string(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    name = _join(where, key)
    if key not in table:
        if default is None:
            raise InvalidArgument(name, "is required")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(name, f"must be a non-empty string, got {value!r}")
    return value


def _table(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(name, "must be a table")
    return value


def _tables(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidArgument(key, "must be an array of tables ([[" + key + "]])")
    return value


def parse_distribution(value: Any, where: str) -> Distribution:
    table = _table(value, where)
    dist = _string(table, "dist", where)
    if dist not in DISTRIBUTIONS:
        raise InvalidArgument(_join(where, "dist"), f"unknown distribution {dist!r}; expected "
                              + " | ".join(DISTRIBUTIONS))
    allowed = {"dist", "mean_s"} | ({"cv"} if dist == "lognormal" else set())
    _check_keys(table, where, allowed, {"dist", "mean_s"} | ({"cv"} if dist == "lognormal" else set()))
    mean = _number(table, "mean_s", where, positive=True)
    cv = _number(table, "cv", where, positive=True) if dist == "lognormal" else 1.0
    return Distribution(dist, mean, cv)


# ---------------------------------------------------------------- the parser
TOP_KEYS = {"name", "duration_s", "seed", "target_wait_s", "arrivals", "skills", "agent_groups",
            "process",
            "trace", "policy", "description"}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file. Raises InvalidArgument naming the bad key."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidArgument("scenario", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument("scenario", f"{path}: not valid TOML: {exc}") from None
    return parse_scenario(doc, base_dir=path.parent, default_name=path.stem, source=path)


def parse_scenario(doc: Mapping[str, Any], *, base_dir: Path = Path("."),
                   default_name: str = "scenario", source: Path | None = None) -> Scenario:
    _check_keys(doc, "", TOP_KEYS, set())
    name = _string(doc, "name", "", default_name)
    if "description" in doc:
        _string(doc, "description", "")
    seed = _integer(doc, "seed", "", default=0)
    target = _number(doc, "target_wait_s", "", default=180.0, positive=True)
    policy = _string(doc, "policy", "") if "policy" in doc else None
    trace = _parse_trace(doc["trace"], base_dir) if "trace" in doc else None

    if trace is None:
        for key in ("duration_s", "arrivals", "skills", "agent_groups"):
            if key not in doc:
                raise InvalidArgument(key, "is required (or give a [trace])")
    elif "arrivals" in doc or "skills" in doc:
        raise InvalidArgument("arrivals" if "arrivals" in doc else "skills",
                              "a trace scenario takes its customers from the trace; remove this key")
    duration = _number(doc, "duration_s", "", positive=True) if "duration_s" in doc else 0.0

    arrivals = []
    for i, seg in enumerate(_tables(doc, "arrivals")):
        where = f"arrivals[{i}]"
        _check_keys(seg, where, {"from_s", "to_s", "rate_per_s"}, {"from_s", "to_s", "rate_per_s"})
        lo = _number(seg, "from_s", where, minimum=0.0)
        hi = _number(seg, "to_s", where, minimum=0.0)
        if hi <= lo:
            raise InvalidArgument(f"{where}.to_s", f"must be greater than from_s ({lo:g})")
        if hi > duration:
            raise InvalidArgument(f"{where}.to_s", f"must be <= duration_s ({duration:g})")
        arrivals.append(ArrivalSegment(lo, hi, _number(seg, "rate_per_s", where, minimum=0.0)))
    ordered = sorted(arrivals, key=lambda s: s.from_s)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.from_s < a.to_s:
            raise InvalidArgument("arrivals", f"segments overlap at {b.from_s:g} s")

    skills = []
    names: set[str] = set()
    for i, sk in enumerate(_tables(doc, "skills")):
        where = f"skills[{i}]"
        _check_keys(sk, where, {"name", "share", "vip_share", "handle_time", "patience",
                                "transfer", "work_order"},
                    {"name", "share", "handle_time"})
        sname = _string(sk, "name", where)
        if sname in names:
            raise InvalidArgument(f"{where}.name", f"duplicate skill {sname!r}")
        names.add(sname)
        skills.append(SkillSpec(
            name=sname,
            share=_number(sk, "share", where, minimum=0.0, maximum=1.0),
            vip_share=_number(sk, "vip_share", where, default=0.0, minimum=0.0, maximum=1.0),
            handle_time=parse_distribution(sk["handle_time"], f"{where}.handle_time"),
            patience=parse_distribution(sk["patience"], f"{where}.patience") if "patience" in sk else None,
            transfer=_parse_transfer(sk["transfer"], f"{where}.transfer") if "transfer" in sk else None,
            work_order=(_parse_work_order(sk["work_order"], f"{where}.work_order")
                        if "work_order" in sk else None),
        ))
    for i, spec in enumerate(skills):
        targets = (("transfer.to", spec.transfer.to if spec.transfer else ""),
                   ("work_order.department",
                    spec.work_order.department if spec.work_order else ""))
        for key, dest in targets:
            if dest and dest not in names:
                raise InvalidArgument(f"skills[{i}].{key}", f"{dest!r} is not a skill of this "
                                      "scenario")
    if skills and abs(sum(s.share for s in skills) - 1.0) > 1e-6:
        raise InvalidArgument("skills", f"shares must sum to 1, got {sum(s.share for s in skills):g}")

    groups = []
    for i, g in enumerate(_tables(doc, "agent_groups")):
        where = f"agent_groups[{i}]"
        _check_keys(g, where, {"count", "skills", "capacity", "from_s", "to_s",
                                 "planned_to_s"}, {"count", "skills"})
        gskills = _table(g["skills"], f"{where}.skills")
        if not gskills:
            raise InvalidArgument(f"{where}.skills", "must name at least one skill")
        prof = {}
        for sname in gskills:
            if trace is None and sname not in names:
                raise InvalidArgument(f"{where}.skills.{sname}", "is not a skill of this scenario")
            prof[sname] = _number(gskills, sname, f"{where}.skills", positive=True, maximum=1.0)
        lo = _number(g, "from_s", where, default=0.0, minimum=0.0)
        hi = _number(g, "to_s", where, positive=True) if "to_s" in g else math.inf
        if hi <= lo:
            raise InvalidArgument(f"{where}.to_s", f"must be greater than from_s ({lo:g})")
        planned = _number(g, "planned_to_s", where, positive=True) if "planned_to_s" in g \
            else None
        if planned is not None and planned <= lo:
            raise InvalidArgument(f"{where}.planned_to_s",
                                  f"must be greater than from_s ({lo:g})")
        groups.append(AgentGroup(
            count=_integer(g, "count", where),
            skills=prof,
            capacity=_integer(g, "capacity", where, default=1, minimum=1),
            from_s=lo,
            to_s=hi,
            planned_to_s=planned,
        ))
    if trace is not None and trace.agents is None and not groups:
        raise InvalidArgument("agent_groups", "is required unless trace.agents = \"from-trace\"")
    process = _parse_process(doc["process"]) if "process" in doc else ProcessSpec()
    return Scenario(name, duration, seed, target, tuple(arrivals), tuple(skills), tuple(groups),
                    trace, policy, source, process)


def _parse_transfer(value: Any, where: str) -> TransferSpec:
    t = _table(value, where)
    _check_keys(t, where, {"share", "to", "after"}, {"share", "to"})
    return TransferSpec(_number(t, "share", where, minimum=0.0, maximum=1.0),
                        _string(t, "to", where),
                        _number(t, "after", where, default=0.5, minimum=0.0, maximum=1.0))


def _parse_work_order(value: Any, where: str) -> WorkOrderSpec:
    t = _table(value, where)
    _check_keys(t, where, {"share", "department", "priority", "after"}, {"share", "department"})
    priority = _string(t, "priority", where, "medium")
    if priority not in ("high", "medium", "low"):
        raise InvalidArgument(f"{where}.priority", "must be high, medium or low")
    return WorkOrderSpec(_number(t, "share", where, minimum=0.0, maximum=1.0),
                         _string(t, "department", where), priority,
                         _number(t, "after", where, default=0.5, minimum=0.0, maximum=1.0))


def _parse_process(value: Any) -> ProcessSpec:
    where = "process"
    t = _table(value, where)
    _check_keys(t, where, {"offer_timeout_s", "decline_share", "miss_share", "decide_s",
                           "offer_misses_to_away", "offer_pause_s", "away_s", "wrap_up_s",
                           "shift_end", "work_order_sla_s"}, set())
    base = ProcessSpec()
    shift_end = _string(t, "shift_end", where, base.shift_end)
    if shift_end not in ("hand-over", "finish"):
        raise InvalidArgument("process.shift_end", "must be \"hand-over\" or \"finish\"")
    sla = dict(base.work_order_sla_s)
    if "work_order_sla_s" in t:
        table = _table(t["work_order_sla_s"], "process.work_order_sla_s")
        _check_keys(table, "process.work_order_sla_s", {"high", "medium", "low"}, set())
        for key in table:
            sla[key] = _number(table, key, "process.work_order_sla_s", positive=True)
    spec = ProcessSpec(
        offer_timeout_s=_number(t, "offer_timeout_s", where, default=0.0, minimum=0.0),
        decline_share=_number(t, "decline_share", where, default=0.0, minimum=0.0, maximum=1.0),
        miss_share=_number(t, "miss_share", where, default=0.0, minimum=0.0, maximum=1.0),
        decide_s=_number(t, "decide_s", where, default=0.0, minimum=0.0),
        offer_misses_to_away=_integer(t, "offer_misses_to_away", where, default=3, minimum=0),
        offer_pause_s=_number(t, "offer_pause_s", where, default=10.0, minimum=0.0),
        away_s=_number(t, "away_s", where, default=120.0, minimum=0.0),
        wrap_up_s=_number(t, "wrap_up_s", where, default=0.0, minimum=0.0),
        shift_end=shift_end, work_order_sla_s=sla)
    if spec.decline_share + spec.miss_share > 1.0:
        raise InvalidArgument("process.miss_share", "decline_share + miss_share must be <= 1")
    if (spec.decline_share or spec.miss_share) and not spec.offer_timeout_s:
        raise InvalidArgument("process.offer_timeout_s", "must be > 0 for declines and misses")
    if spec.decide_s >= spec.offer_timeout_s > 0:
        raise InvalidArgument("process.decide_s", "must be shorter than offer_timeout_s")
    return spec


def _parse_trace(value: Any, base_dir: Path) -> TraceSpec:
    where = "trace"
    table = _table(value, where)
    _check_keys(table, where, {"path", "format", "days", "time_scale", "agents"}, {"path", "format"})
    fmt = _string(table, "format", where)
    if fmt != "anonymous-bank":
        raise InvalidArgument("trace.format", f"unknown format {fmt!r}; expected anonymous-bank")
    path = (base_dir / _string(table, "path", where)).resolve()
    if not path.is_file():
        raise InvalidArgument("trace.path", f"no such file: {path}")
    days = None
    if "days" in table:
        raw = table["days"]
        if not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw):
            raise InvalidArgument("trace.days", "must be a non-empty list of dates (\"2010-08-02\")")
        days = tuple(raw)
    scale = _number(table, "time_scale", where, default=1.0, positive=True)
    agents = None
    if "agents" in table:
        agents = _string(table, "agents", where)
        if agents != "from-trace":
            raise InvalidArgument("trace.agents", f"unknown value {agents!r}; expected \"from-trace\"")
    return TraceSpec(path, fmt, days, scale, agents)
