"""Reports (JSON), records (CSV) and plots (PNG) in the shapes docs/FORMATS.md fixes.

Shared by ``surgedesk simulate`` and ``surgedesk surge`` so both speak one format.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from surgedesk.engine.calibration import kaplan_meier_at, wait_ratio

RECORD_COLUMNS = ("customer_id", "skill", "vip", "arrival_s", "est_p50_s", "est_p90_s", "outcome",
                  "wait_s", "agent_id", "ahead")


class Record(Protocol):
    customer_id: str
    skill: str
    vip: int
    arrival_s: float
    est_p50_s: float
    est_p90_s: float
    outcome: str
    wait_s: float
    agent_id: str
    queued: bool
    ahead: int


class Point(Protocol):
    t_s: float
    queued: int
    busy_capacity: int
    arrivals: int
    wait_p90_s: float


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation (numpy's default); 0.0 for no values."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def wait_summary(waits: Iterable[float]) -> dict[str, float]:
    values = sorted(waits)
    return {
        "mean": sum(values) / len(values) if values else 0.0,
        "p50": quantile(values, 0.50),
        "p90": quantile(values, 0.90),
        "p95": quantile(values, 0.95),
        "p99": quantile(values, 0.99),
        "max": values[-1] if values else 0.0,
    }


def estimate_quality(records: Sequence[Record]) -> dict[str, Any]:
    """Calibration of the estimates shown to customers who had to queue and were served.

    ``coverage_p90``: fraction whose wait was at most their p90 (honest: about 0.9).
    ``median_abs_rel_error``: median of |p50 - wait| / wait over those who waited over 10 s.
    Customers served at once were shown no wait and count in neither: they would only flatter.
    ``oracle_median_abs_rel_error``: the same error for a hindsight oracle whose p50 is the
    median wait actually seen by customers of the same skill and tier who found the same number
    ahead -- a practical floor for any estimate made from the line at arrival. With short lines
    the wait is nearly exponential and even a perfect median is off by ~50% for half the
    customers; only long lines make waits predictable to 25%.
    """
    shown = [r for r in records if r.outcome == "served" and r.queued]
    covered = sum(1 for r in shown if r.wait_s <= r.est_p90_s + 1e-9)
    long = [r for r in shown if r.wait_s > 10.0]
    errors = sorted(abs(r.est_p50_s - r.wait_s) / r.wait_s for r in long if math.isfinite(r.est_p50_s))
    groups: dict[tuple[str, int, int], list[float]] = {}
    for r in shown:
        groups.setdefault((r.skill, r.vip, _ahead_bucket(r.ahead)), []).append(r.wait_s)
    medians = {k: quantile(sorted(v), 0.5) for k, v in groups.items()}
    oracle = sorted(
        abs(medians[(r.skill, r.vip, _ahead_bucket(r.ahead))] - r.wait_s) / r.wait_s for r in long
    )
    return {
        "coverage_p90": covered / len(shown) if shown else 1.0,
        "median_abs_rel_error": quantile(errors, 0.5) if errors else 0.0,
        "oracle_median_abs_rel_error": quantile(oracle, 0.5) if oracle else 0.0,
        "customers_shown": len(shown),
        "customers_over_10s": len(long),
    }


STILL_WAITING = ("abandoned", "waiting")  # outcomes whose virtual wait is censored


def censored_coverage(records: Sequence[Record], quantile_name: str) -> dict[str, Any]:
    """Calibration of one stated quantile (``"p50"`` or ``"p90"``) judged with abandonment
    as censoring (docs/DESIGN.md, "Honest estimates"): a customer's virtual wait V (the wait
    had they stayed) is seen for the served and is only known to exceed the time they waited
    for those who left or were still waiting at the end. For every customer shown a finite
    estimate e, R = V / e (censored the same way); P(V <= e) is P(R <= 1) by Kaplan-Meier.
    ``served_only`` is the naive figure over the served alone, which flatters an overloaded
    desk (the impatient leave; the served are those who stayed)."""
    shown = [r for r in records if r.queued and r.outcome in ("served", *STILL_WAITING)]
    samples = []
    for r in shown:
        estimate = r.est_p50_s if quantile_name == "p50" else r.est_p90_s
        if not math.isfinite(estimate):
            continue  # "wait unknown": no estimate was shown
        samples.append((wait_ratio(r.wait_s, estimate), r.outcome == "served"))
    served = [s for s in samples if s[1]]
    return {
        "coverage": kaplan_meier_at(samples, 1.0),
        "served_only": sum(1 for x, _ in served if x <= 1.0) / len(served) if served else None,
        "customers": len(samples),
        "censored": len(samples) - len(served),
    }


def reestimate_calibration(records: Sequence[Record]) -> dict[str, Any]:
    """The estimates streamed to customers still waiting after 1, 5 and 15 minutes
    (``reestimates`` of simulated records: the core's ``queue_status`` then), judged as the
    first one is: R = (V - waited) / e, censored for those who then left or were still waiting
    at the end, P(R <= 1) by Kaplan-Meier. Keyed by the seconds waited; records without
    re-estimates (a surge's) give none."""
    out: dict[str, Any] = {}
    by_after: dict[float, list[tuple[Record, tuple[float, float]]]] = {}
    for r in records:
        for after_s, p50, p90 in getattr(r, "reestimates", ()):
            by_after.setdefault(after_s, []).append((r, (p50, p90)))
    for after_s in sorted(by_after):
        judged: dict[str, Any] = {}
        for name, index in (("p50", 0), ("p90", 1)):
            samples = []
            for r, estimates in by_after[after_s]:
                if math.isfinite(estimates[index]):
                    samples.append((wait_ratio(r.wait_s - after_s, estimates[index]),
                                    r.outcome == "served"))
            judged[name] = {"coverage": kaplan_meier_at(samples, 1.0),
                            "customers": len(samples),
                            "censored": sum(1 for _, served in samples if not served)}
        out[f"{after_s:g}"] = judged
    return out


def calibration(records: Sequence[Record], intervals: int = 8) -> dict[str, Any]:
    """Censoring-aware coverage of the p50 and p90 estimates: overall, per skill, and per
    interval of the run (by arrival). Honest is about 0.5 and 0.9."""
    def both(rs: Sequence[Record]) -> dict[str, Any]:
        return {"p50": censored_coverage(rs, "p50"), "p90": censored_coverage(rs, "p90")}

    per_skill = {skill: both([r for r in records if r.skill == skill])
                 for skill in sorted({r.skill for r in records})}
    over_time = []
    if records:
        start = min(r.arrival_s for r in records)
        width = max((max(r.arrival_s for r in records) - start) / intervals, 1e-9)
        for k in range(intervals):
            lo, hi = start + k * width, start + (k + 1) * width
            inside = [r for r in records
                      if lo <= r.arrival_s < hi or (k == intervals - 1 and r.arrival_s == hi)]
            over_time.append({"from_s": lo, "to_s": hi, **both(inside)})
    return {**both(records), "per_skill": per_skill, "over_time": over_time}


LIVE_AGREEMENT = 0.03  # the live metric and the report agree within this (issue 26)


def latest_window(records: Sequence[Record], window: int) -> dict[str, dict[str, Any]]:
    """Per skill, the censoring-aware coverage over the ``window`` latest outcomes (by the
    time each customer left the line: served or gone): the population the engine's live metric
    ``surgedesk_estimate_coverage_ratio`` is measured over. Customers still waiting at the end
    have no outcome yet and are not in it."""
    out: dict[str, dict[str, Any]] = {}
    for skill in sorted({r.skill for r in records}):
        ended = sorted((r for r in records if r.skill == skill and r.queued
                        and r.outcome in ("served", "abandoned")
                        and math.isfinite(r.est_p90_s) and r.wait_s > 0),
                       key=lambda r: r.arrival_s + r.wait_s)[-window:]
        out[skill] = {"p50": censored_coverage(ended, "p50")["coverage"],
                      "p90": censored_coverage(ended, "p90")["coverage"],
                      "outcomes": len(ended)}
    return out


def live_agreement(window: dict[str, dict[str, Any]],
                   live: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The engine's live coverage beside the report's over the same window: the largest
    difference over the skills and quantiles both have, and whether it is within
    :data:`LIVE_AGREEMENT`."""
    diffs = [abs(float(live[skill][q]) - float(window[skill][name]))
             for skill in window if skill in live
             for q, name in (("0.5", "p50"), ("0.9", "p90"))
             if q in live[skill] and window[skill][name] is not None]
    if not diffs:
        return {"max_difference": None, "agrees": None}
    return {"max_difference": max(diffs), "agrees": max(diffs) <= LIVE_AGREEMENT}


def live_coverage_text(report: dict[str, Any]) -> str:
    """"; live coverage agrees with the report: yes (max difference 0.012)", or "" without
    the engine's metric."""
    agreement = report.get("engine", {}).get("estimate_coverage_agreement")
    if not agreement or agreement["agrees"] is None:
        return ""
    return (f"; live coverage agrees with the report: "
            f"{'yes' if agreement['agrees'] else 'no'} (max difference "
            f"{agreement['max_difference']:.3f})")


def calibration_text(report: dict[str, Any]) -> str:
    """The censoring-aware coverage as a report prints it."""
    cal = report["calibration"]

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    text = (f"censoring-aware coverage p90 {fmt(cal['p90']['coverage'])} "
            f"p50 {fmt(cal['p50']['coverage'])} ({cal['p90']['censored']} of "
            f"{cal['p90']['customers']} censored)")
    again = report.get("reestimates") or {}
    if again:
        text += "; re-estimates " + ", ".join(
            f"after {float(k) / 60:g} min p90 {fmt(v['p90']['coverage'])} p50 "
            f"{fmt(v['p50']['coverage'])}" for k, v in again.items())
    return text


def _ahead_bucket(ahead: int) -> int:
    """Exact up to 20 ahead, then buckets 10% wide, so every group has company."""
    return ahead if ahead <= 20 else 20 + int(math.log(ahead / 20) / math.log(1.1))


def _service(records: Sequence[Record], target_wait_s: float) -> dict[str, Any]:
    """Service level: the served within the target, over the served. With nobody served
    there is none to report (``None``, and ``service_level_note`` says why): a desk whose
    every customer gave up has not met its target."""
    served = [r for r in records if r.outcome == "served"]
    abandoned = sum(1 for r in records if r.outcome == "abandoned")
    out: dict[str, Any] = {
        "customers": len(records),
        "served": len(served),
        "abandoned": abandoned,
        "wait_s": wait_summary(r.wait_s for r in served),
        "service_level": (sum(1 for r in served if r.wait_s <= target_wait_s) / len(served))
        if served else None,
    }
    if not served:
        out["service_level_note"] = (f"nobody was served ({abandoned} of {len(records)} "
                                     f"abandoned)" if records else "no customers")
    return out


def service_level_text(report: dict[str, Any]) -> str:
    """The service level as a report prints it: ``0.981``, or why there is none."""
    level = report.get("service_level")
    if level is None:
        return f"none ({report.get('service_level_note', 'nobody was served')})"
    return f"{level:.3f}"


def build_report(
    *,
    scenario: str,
    mode: str,
    target_wait_s: float,
    records: Sequence[Record],
    timeline: Sequence[Point],
    dispatch_lag_ms: Sequence[float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    overall = _service(records, target_wait_s)
    served = [r for r in records if r.outcome == "served"]
    lags = sorted(dispatch_lag_ms)
    per_skill = {}
    for skill in sorted({r.skill for r in records}):
        per_skill[skill] = _service([r for r in records if r.skill == skill], target_wait_s)
    report: dict[str, Any] = {
        "scenario": scenario,
        "mode": mode,
        "customers": overall["customers"],
        "served": overall["served"],
        "abandoned": overall["abandoned"],
        "lost": sum(1 for r in records if r.outcome == "lost"),
        "unserved": sum(1 for r in records if r.outcome == "waiting"),
        # starts the engine never answered (surge: an error, or no answer before the end)
        "unanswered": sum(1 for r in records if r.outcome == "unanswered"),
        "target_wait_s": target_wait_s,
        "wait_s": overall["wait_s"],
        "service_level": overall["service_level"],
        "p_wait": (sum(1 for r in served if r.wait_s > 0.5) / len(served)) if served else 0.0,
        "estimate": estimate_quality(records),
        "calibration": calibration(records),
        "reestimates": reestimate_calibration(records),
        "dispatch_lag_ms": {
            "p50": quantile(lags, 0.5),
            "p99": quantile(lags, 0.99),
            "max": lags[-1] if lags else 0.0,
        },
        "per_skill": per_skill,
        "timeline": [
            {"t_s": p.t_s, "queued": p.queued, "busy_capacity": p.busy_capacity,
             "arrivals": p.arrivals, "wait_p90_s": p.wait_p90_s}
            for p in timeline
        ],
    }
    if "service_level_note" in overall:
        report["service_level_note"] = overall["service_level_note"]
    if extra:
        report.update(extra)
    return report


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def write_report(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_records(records: Sequence[Record], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(RECORD_COLUMNS)
        for r in records:
            w.writerow([r.customer_id, r.skill, r.vip, f"{r.arrival_s:.3f}", _num(r.est_p50_s),
                        _num(r.est_p90_s), r.outcome, f"{r.wait_s:.3f}", r.agent_id, r.ahead])


def _num(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "inf"


def write_plots(report: dict[str, Any], records: Sequence[Record], stem: str | Path) -> list[Path]:
    """Save ``<stem>-queue.png`` (queue and p90 wait over time against the target) and
    ``<stem>-estimate.png`` (estimate against actual wait). Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    target = report["target_wait_s"]
    tl = report["timeline"]
    minutes = [p["t_s"] / 60.0 for p in tl]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax1.plot(minutes, [p["queued"] for p in tl], label="queued", color="tab:blue")
    ax1.plot(minutes, [p["busy_capacity"] for p in tl], label="busy capacity", color="tab:gray",
             alpha=0.7)
    ax1.set_ylabel("tickets")
    ax1.legend(loc="upper right")
    ax1.set_title(f"{report['scenario']} ({report['mode']}): service level "
                  f"{service_level_text(report)} within {target:g} s")
    ax2.plot(minutes, [p["wait_p90_s"] for p in tl], label="p90 wait of customers served",
             color="tab:orange")
    ax2.axhline(target, color="tab:red", linestyle="--", label=f"target {target:g} s")
    ax2.set_xlabel("time (min)")
    ax2.set_ylabel("wait (s)")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    queue_png = Path(f"{stem}-queue.png")
    fig.savefig(queue_png, dpi=110)
    plt.close(fig)

    shown = [r for r in records if r.outcome == "served" and r.queued and math.isfinite(r.est_p90_s)]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    if shown:
        step = max(1, len(shown) // 5000)
        sample = shown[::step]
        ax.scatter([r.est_p50_s for r in sample], [r.wait_s for r in sample], s=4, alpha=0.35,
                   label="actual wait vs p50", color="tab:blue")
        ax.scatter([r.est_p90_s for r in sample], [r.wait_s for r in sample], s=4, alpha=0.2,
                   label="actual wait vs p90", color="tab:orange")
        top = max(max(r.wait_s for r in sample), max(r.est_p90_s for r in sample), 1.0)
        ax.plot([0, top], [0, top], color="black", linewidth=1, label="estimate = actual")
    est = report["estimate"]
    ax.set_title(f"estimate vs actual: p90 coverage {est['coverage_p90']:.3f}, "
                 f"p50 error {est['median_abs_rel_error']:.3f}", fontsize=10)
    ax.set_xlabel("estimate shown when queued (s)")
    ax.set_ylabel("actual wait (s)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    est_png = Path(f"{stem}-estimate.png")
    fig.savefig(est_png, dpi=110)
    plt.close(fig)
    return [queue_png, est_png, calibration_plot(report, stem)]


def calibration_plot(report: dict[str, Any], stem: str | Path) -> Path:
    """``<stem>-calibration.png``: each stated quantile (0.5, 0.9) against the frequency with
    which the wait stayed within it -- censoring-aware (Kaplan-Meier, abandonment as
    censoring) and served-only -- overall and per skill; honest estimates sit on the
    diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = report["calibration"]
    stated = [0.5, 0.9]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="black", linewidth=1, label="honest")
    ax.axhspan(0.85, 0.95, xmin=0.85, xmax=0.95, color="tab:green", alpha=0.15)
    ax.axhspan(0.40, 0.60, xmin=0.45, xmax=0.55, color="tab:green", alpha=0.15)

    def points(block: dict[str, Any], key: str) -> list[float | None]:
        return [block[q][key] for q in ("p50", "p90")]

    def plot(ys: list[float | None], **style: Any) -> None:
        xs = [x for x, y in zip(stated, ys, strict=True) if y is not None]
        ax.plot(xs, [y for y in ys if y is not None], **style)

    plot(points(cal, "coverage"), marker="o", color="tab:blue", label="all, censoring-aware")
    plot(points(cal, "served_only"), marker="x", linestyle="--", color="tab:gray",
         label="all, served only")
    for skill, block in cal["per_skill"].items():
        plot(points(block, "coverage"), marker=".", alpha=0.6, label=f"{skill}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("stated quantile of the wait estimate")
    ax.set_ylabel("observed P(wait <= estimate)")
    ax.set_title(f"{report['scenario']} ({report['mode']}): calibration", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(f"{stem}-calibration.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
