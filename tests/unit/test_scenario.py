import copy
import math
from pathlib import Path

import pytest

from surgedesk.benchmarks.population import build_population
from surgedesk.benchmarks.scenario import load_scenario, parse_scenario
from surgedesk.engine.errors import InvalidArgument

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"

VALID = {
    "name": "t",
    "duration_s": 600,
    "seed": 1,
    "target_wait_s": 60,
    "arrivals": [{"from_s": 0, "to_s": 300, "rate_per_s": 1.0},
                 {"from_s": 300, "to_s": 600, "rate_per_s": 0.2}],
    "skills": [
        {"name": "a", "share": 0.7, "vip_share": 0.2,
         "handle_time": {"dist": "lognormal", "mean_s": 100, "cv": 0.5},
         "patience": {"dist": "exponential", "mean_s": 200}},
        {"name": "b", "share": 0.3, "handle_time": {"dist": "fixed", "mean_s": 50}},
    ],
    "agent_groups": [{"count": 3, "skills": {"a": 1.0, "b": 0.5}, "capacity": 2},
                     {"count": 1, "skills": {"b": 1.0}, "from_s": 100, "to_s": 500}],
}


def mutate(path, value):
    doc = copy.deepcopy(VALID)
    target = doc
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


def test_a_valid_scenario_parses_with_the_documented_defaults():
    sc = parse_scenario(VALID)
    assert sc.skill("b").vip_share == 0.0 and sc.skill("b").patience is None
    assert sc.agent_groups[0].from_s == 0 and math.isinf(sc.agent_groups[0].to_s)
    assert parse_scenario(mutate(["target_wait_s"], KeyError)).target_wait_s == 180


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["colour"], "red", "colour"),
        (["duration_s"], KeyError, "duration_s"),
        (["duration_s"], -5, "duration_s"),
        (["seed"], 1.5, "seed"),
        (["arrivals", 0, "rate_per_s"], -1, "arrivals[0].rate_per_s"),
        (["arrivals", 1, "to_s"], 9999, "arrivals[1].to_s"),
        (["arrivals", 0, "to_s"], 0, "arrivals[0].to_s"),
        (["arrivals", 0, "burst"], 3, "arrivals[0].burst"),
        (["skills", 0, "share"], 0.9, "skills"),
        (["skills", 1, "name"], "a", "skills[1].name"),
        (["skills", 0, "handle_time", "dist"], "gauss", "skills[0].handle_time.dist"),
        (["skills", 0, "handle_time", "cv"], KeyError, "skills[0].handle_time.cv"),
        (["skills", 0, "handle_time", "mean_s"], 0, "skills[0].handle_time.mean_s"),
        (["skills", 1, "handle_time", "cv"], 0.3, "skills[1].handle_time.cv"),
        (["skills", 0, "patience", "dist"], "weibull", "skills[0].patience.dist"),
        (["skills", 0, "vip_share"], 2, "skills[0].vip_share"),
        (["agent_groups", 0, "skills", "c"], 1.0, "agent_groups[0].skills.c"),
        (["agent_groups", 0, "skills", "a"], 1.5, "agent_groups[0].skills.a"),
        (["agent_groups", 0, "capacity"], 0, "agent_groups[0].capacity"),
        (["agent_groups", 0, "count"], "many", "agent_groups[0].count"),
        (["agent_groups", 1, "to_s"], 50, "agent_groups[1].to_s"),
        (["agent_groups", 1, "shift"], "night", "agent_groups[1].shift"),
        (["agent_groups", 1, "planned_to_s"], 100, "agent_groups[1].planned_to_s"),
        (["agent_groups", 1, "planned_to_s"], "late", "agent_groups[1].planned_to_s"),
    ],
)
def test_a_bad_scenario_is_rejected_naming_the_key(path, value, field):
    with pytest.raises(InvalidArgument) as info:
        parse_scenario(mutate(path, value))
    assert info.value.field == field


def test_a_group_that_leaves_before_the_plan_says_drops_out_unannounced():
    doc = mutate(["agent_groups", 1, "planned_to_s"], 550)
    sc = parse_scenario(doc)
    assert (sc.agent_groups[1].to_s, sc.agent_groups[1].planned_to_s) == (500, 550)
    assert sc.agent_groups[0].planned_to_s is None
    pop = build_population(sc)
    assert (pop.agents[3].to_s, pop.agents[3].planned_to_s) == (500, 550)


def test_a_file_that_is_not_toml_is_rejected(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(InvalidArgument) as info:
        load_scenario(bad)
    assert info.value.field == "scenario"


def test_the_population_follows_the_scenario_and_its_seed():
    sc = parse_scenario(VALID)
    pop = build_population(sc)
    again = build_population(sc)
    assert pop.customers == again.customers
    assert pytest.approx(len(pop.customers), rel=0.2) == 300 * 1.0 + 300 * 0.2
    shares = sum(c.skill == "a" for c in pop.customers) / len(pop.customers)
    assert shares == pytest.approx(0.7, abs=0.08)
    assert all(c.handle_s == 50 for c in pop.customers if c.skill == "b")
    assert all(math.isinf(c.patience_s) for c in pop.customers if c.skill == "b")
    assert len(pop.agents) == 4 and pop.agents[3].from_s == 100


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_scenario_is_valid(path):
    sc = load_scenario(path)
    pop = build_population(sc)
    assert pop.customers and (pop.agents or sc.name == "big-sale")


def test_the_bank_trace_becomes_customers_and_agents():
    sc = parse_scenario({"name": "b", "trace": {
        "path": str(SCENARIOS.parent / "data" / "anonymous_bank_aug_1-15.csv"),
        "format": "anonymous-bank", "days": ["2010-08-02"], "agents": "from-trace"}})
    pop = build_population(sc)
    assert 2000 < len(pop.customers) < 2400
    assert set(pop.skills) <= {"PS", "NW", "IN", "NE", "TT", "PE"}
    assert {c.vip_tier for c in pop.customers} == {0, 1, 2}
    assert 10 < len(pop.agents) < 30 and all(a.capacity == 1 for a in pop.agents)
    assert all(0 <= a.from_s < a.to_s <= 86400 for a in pop.agents)
    hung_up = [c for c in pop.customers if math.isfinite(c.patience_s)]
    assert 0.1 < len(hung_up) / len(pop.customers) < 0.5


@pytest.mark.parametrize(
    ("trace", "field"),
    [({"path": "nope.csv", "format": "anonymous-bank"}, "trace.path"),
     ({"path": "x", "format": "csv"}, "trace.format"),
     ({"path": "x", "format": "anonymous-bank", "agents": "all"}, "trace.agents"),
     ({"path": "x", "format": "anonymous-bank", "speed": 2}, "trace.speed")],
)
def test_a_bad_trace_section_names_the_key(trace, field, tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(InvalidArgument) as info:
        parse_scenario({"trace": trace, "agent_groups": []}, base_dir=tmp_path)
    assert info.value.field == field
