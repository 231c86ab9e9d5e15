"""How honest wait estimates were: coverage judged with abandonment as censoring.

A customer's virtual wait V (the wait until served, had they stayed) is observed for those
served and right-censored for those who left (V > the time they waited). For customers shown
an estimate e, R = V / e is censored the same way, and P(V <= e) = P(R <= 1) comes from the
Kaplan-Meier estimate of R's distribution (:func:`kaplan_meier_at`). Pure functions: the
benchmarks' reports and the engine's live metric share them.
"""

from __future__ import annotations

from collections.abc import Iterable


def kaplan_meier_at(samples: Iterable[tuple[float, bool]], t: float) -> float | None:
    """P(X <= t) from right-censored samples ``(x, observed)`` by the Kaplan-Meier
    estimator: an observed sample is an event at ``x``; a censored one says only that X > x.
    Events at the same ``x`` as censorings come first (a censored sample is at risk there).
    ``None`` with no samples. O(n log n)."""
    ordered = sorted(samples, key=lambda s: (s[0], not s[1]))
    if not ordered:
        return None
    at_risk, survival, i = len(ordered), 1.0, 0
    while i < len(ordered) and ordered[i][0] <= t:
        x = ordered[i][0]
        events = ties = 0
        while i < len(ordered) and ordered[i][0] == x:
            events += ordered[i][1]
            ties += 1
            i += 1
        if events:
            survival *= 1.0 - events / at_risk
        at_risk -= ties
    return 1.0 - survival


def wait_ratio(wait_s: float, estimate_s: float) -> float:
    """R = wait / estimate: 0 for no wait, infinite for a wait against an estimate of none."""
    if wait_s <= 0:
        return 0.0
    return wait_s / estimate_s if estimate_s > 0 else float("inf")


def coverage(outcomes: Iterable[tuple[float, float, bool]]) -> float | None:
    """P(V <= e) over ``(wait_s, estimate_s, served)`` outcomes (served: the wait is V; not
    served: V is only known to exceed it). ``None`` with none."""
    return kaplan_meier_at(((wait_ratio(w, e), served) for w, e, served in outcomes), 1.0)
