import statistics
from dataclasses import dataclass

from surgedesk.benchmarks.population import build_population
from surgedesk.benchmarks.scenario import parse_scenario
from surgedesk.benchmarks.simulator import simulate
from surgedesk.engine.policies import policy_named


@dataclass
class Outcome:
    mean_wait_s: float
    p_wait: float
    p_abandon: float
    served: int
    customers: int
    records: list


def run_single_skill(*, rate, handle, agents, capacity=1, duration, seed, patience=None,
                     handle_dist="exponential", warmup_s=2000.0) -> Outcome:
    skill = {"name": "s", "share": 1.0,
             "handle_time": {"dist": handle_dist, "mean_s": handle}}
    if patience is not None:
        skill["patience"] = {"dist": "exponential", "mean_s": patience}
    sc = parse_scenario({
        "name": "theory", "duration_s": duration, "seed": seed,
        "arrivals": [{"from_s": 0, "to_s": duration, "rate_per_s": rate}],
        "skills": [skill],
        "agent_groups": [{"count": agents, "skills": {"s": 1.0}, "capacity": capacity}],
    })
    result = simulate(build_population(sc), policy_named("strict"))
    steady = [r for r in result.records if r.arrival_s >= warmup_s]
    served = [r for r in steady if r.outcome == "served"]
    waits = [r.wait_s for r in steady]  # abandoners count until they leave (Erlang A's W)
    return Outcome(
        mean_wait_s=statistics.fmean(waits),
        p_wait=sum(r.wait_s > 0 for r in steady) / len(steady),
        p_abandon=sum(r.outcome == "abandoned" for r in steady) / len(steady),
        served=len(served),
        customers=len(steady),
        records=result.records,
    )
