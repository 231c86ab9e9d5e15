"""Staffing arithmetic: Erlang C (M/M/n) and Erlang A (M/M/n+M), and a staffing search.

Pure functions, O(n + J) each (n servers, J queue states until the tail is negligible).

Erlang A's service level uses an exact identity: with ``j`` customers ahead, the time to reach
service is ``sum_{i=0..j} Exp(n mu + i theta)``, which is distributed as
``-ln(B) / theta`` with ``B ~ Beta(c, j + 1)``, ``c = n mu / theta``. A customer of patience
``Exp(theta)`` is then served within ``T`` with probability
``c / (c + j + 1) * (1 - I_x(c + 1, j + 1))``, ``x = exp(-theta T)``, and for an integer second
argument the regularised incomplete beta ``I_x`` is a finite sum, accumulated over ``j`` in one
pass.

A "server" here is one slot of capacity: an agent holding k conversations at once counts as k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from surgedesk.engine.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    servers: int
    offered_load: float  # Erlangs: arrival rate x mean handle time
    p_wait: float  # probability an arriving customer waits
    mean_wait_s: float  # mean queue wait of all arrivals (abandoners until they leave)
    service_level: float  # fraction of *served* customers who wait at most target_s
    p_abandon: float  # fraction of arrivals who give up (0 for Erlang C)
    occupancy: float  # busy servers / servers
    target_s: float


def _check(arrival_rate_per_s: float, handle_s: float, servers: int) -> None:
    if arrival_rate_per_s < 0 or not math.isfinite(arrival_rate_per_s):
        raise InvalidArgument("arrival_rate_per_s", "must be a finite number >= 0")
    if handle_s <= 0 or not math.isfinite(handle_s):
        raise InvalidArgument("handle_s", "must be a finite number > 0")
    if servers < 0:
        raise InvalidArgument("servers", "must be >= 0")


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/n/n, by the stable recursion. O(n)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(arrival_rate_per_s: float, handle_s: float, servers: int, target_s: float) -> QueueMetrics:
    """M/M/n with infinite patience. Unstable (load >= n) gives p_wait 1 and infinite waits."""
    _check(arrival_rate_per_s, handle_s, servers)
    load = arrival_rate_per_s * handle_s
    if arrival_rate_per_s == 0:
        return QueueMetrics(servers, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, target_s)
    if servers <= load:
        return QueueMetrics(servers, load, 1.0, math.inf, 0.0, 0.0, 1.0, target_s)
    b = erlang_b(servers, load)
    c = servers * b / (servers - load * (1.0 - b))
    drain = servers / handle_s - arrival_rate_per_s
    return QueueMetrics(
        servers=servers,
        offered_load=load,
        p_wait=c,
        mean_wait_s=c / drain,
        service_level=1.0 - c * math.exp(-drain * target_s),
        p_abandon=0.0,
        occupancy=load / servers,
        target_s=target_s,
    )


def erlang_a(arrival_rate_per_s: float, handle_s: float, servers: int, patience_s: float,
             target_s: float) -> QueueMetrics:
    """M/M/n+M: exponential patience of mean ``patience_s`` (math.inf gives Erlang C)."""
    _check(arrival_rate_per_s, handle_s, servers)
    if not patience_s > 0:
        raise InvalidArgument("patience_s", "must be > 0")
    if math.isinf(patience_s):
        return erlang_c(arrival_rate_per_s, handle_s, servers, target_s)
    lam, mu, theta, n = arrival_rate_per_s, 1.0 / handle_s, 1.0 / patience_s, servers
    load = lam * handle_s
    if lam == 0:
        return QueueMetrics(n, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, target_s)
    # Unnormalised log-probabilities of states 0..n (Poisson-like), then the queue states.
    log_w = [0.0] * (n + 1)
    log_load = math.log(load)
    for i in range(1, n + 1):
        log_w[i] = log_w[i - 1] + log_load - math.log(i)
    queue_log = []
    acc = log_w[n]
    j = 0
    while True:
        j += 1
        acc += math.log(lam) - math.log(n * mu + j * theta)
        queue_log.append(acc)
        if lam < n * mu + j * theta and acc < max(log_w[n], queue_log[0]) - 40.0:
            break
        if j > 10_000_000:  # pragma: no cover - guarded by the ratio above
            break
    top = max(max(log_w), max(queue_log))
    below = [math.exp(v - top) for v in log_w]  # states 0..n
    above = [math.exp(v - top) for v in queue_log]  # states n+1..
    total = sum(below) + sum(above)
    p_below_n = sum(below[:n]) / total  # arrival finds a free server
    # Arrival finding state n + j (j >= 0) has j customers ahead.
    p_ahead = [below[n] / total] + [a / total for a in above]
    mean_queue = sum((k + 1) * a for k, a in enumerate(above)) / total
    p_abandon = theta * mean_queue / lam
    c = n * mu / theta
    x = math.exp(-theta * target_s)
    # I_x(c+1, j+1) = x^(c+1) * sum_{k=0..j} Gamma(c+1+k) / (Gamma(c+1) k!) (1-x)^k
    served = p_below_n
    served_in_time = p_below_n
    if n > 0:
        log_x_pow = (c + 1.0) * math.log(x) if x > 0 else -math.inf
        term = 1.0
        partial = 0.0
        for jj, p in enumerate(p_ahead):
            if jj > 0:
                term *= (c + jj) / jj * (1.0 - x)
            partial += term
            reach = c / (c + jj + 1.0)
            inc_beta = math.exp(log_x_pow + math.log(partial)) if partial > 0 else 0.0
            served += p * reach
            served_in_time += p * reach * max(0.0, 1.0 - min(1.0, inc_beta))
    busy = load * (1.0 - p_abandon)
    return QueueMetrics(
        servers=n,
        offered_load=load,
        p_wait=1.0 - p_below_n,
        mean_wait_s=mean_queue / lam,
        service_level=served_in_time / served if served > 0 else 0.0,
        p_abandon=p_abandon,
        occupancy=min(1.0, busy / n) if n else 1.0,
        target_s=target_s,
    )


def queue_metrics(arrival_rate_per_s: float, handle_s: float, servers: int,
                  patience_s: float, target_s: float) -> QueueMetrics:
    if math.isinf(patience_s):
        return erlang_c(arrival_rate_per_s, handle_s, servers, target_s)
    return erlang_a(arrival_rate_per_s, handle_s, servers, patience_s, target_s)


MAX_OFFERED_LOAD = 100_000.0  # Erlangs: far beyond any desk, small enough to answer at once


def servers_needed(arrival_rate_per_s: float, handle_s: float, target_s: float,
                   service_level: float, patience_s: float = math.inf,
                   max_abandon: float = 1.0) -> QueueMetrics:
    """The fewest servers meeting ``service_level`` within ``target_s`` (and ``max_abandon``).

    Service level grows with servers, so an exponential then binary search needs
    O(log n) evaluations of O(n + J) each.
    """
    if not 0.0 < service_level < 1.0:
        raise InvalidArgument("service_level", "must be in (0, 1)")
    if not (math.isfinite(arrival_rate_per_s) and arrival_rate_per_s >= 0):
        raise InvalidArgument("arrival_rate_per_s", "must be a finite number >= 0")
    if not (math.isfinite(handle_s) and handle_s > 0):
        raise InvalidArgument("handle_s", "must be a finite number > 0")
    if not (math.isfinite(target_s) and target_s >= 0):
        raise InvalidArgument("target_s", "must be a finite number >= 0")
    if not patience_s > 0:
        raise InvalidArgument("patience_s", "must be > 0 (infinite: customers never give up)")
    if not 0.0 < max_abandon <= 1.0:
        raise InvalidArgument("max_abandon", "must be in (0, 1]")
    if arrival_rate_per_s * handle_s > MAX_OFFERED_LOAD:
        # The search costs O(n) per step: bound it rather than let one request spin.
        raise InvalidArgument("arrival_rate_per_s", f"offered load (rate x handle time) must be "
                              f"at most {MAX_OFFERED_LOAD:,.0f} Erlangs")
    if arrival_rate_per_s == 0:
        return queue_metrics(0.0, handle_s, 0, patience_s, target_s)

    def ok(n: int) -> bool:
        m = queue_metrics(arrival_rate_per_s, handle_s, n, patience_s, target_s)
        return m.service_level >= service_level and m.p_abandon <= max_abandon and m.p_wait < 1.0

    lo = max(0, math.floor(arrival_rate_per_s * handle_s * 0.5))
    hi = max(1, math.ceil(arrival_rate_per_s * handle_s) + 1)
    while not ok(hi):
        lo = hi
        hi *= 2
        if hi > 4 * MAX_OFFERED_LOAD:
            raise InvalidArgument("service_level", "cannot be reached with these inputs")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    n = hi if not ok(lo) else lo
    return queue_metrics(arrival_rate_per_s, handle_s, n, patience_s, target_s)
