"""The desk measures how honest its estimates were: each customer told a wait, and what became
of them, join the skill's window in Redis; the metric is the censoring-aware coverage of it."""

import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.desk.catalogue import AgentProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.metrics.collector import MIN_COVERAGE_OUTCOMES, DeskMetrics
from surgedesk.adapters.redis.calibration_window import CalibrationWindow, window_key
from surgedesk.engine.calibration import coverage
from surgedesk.engine.policies import policy_named


def test_outcomes_join_the_window_only_for_customers_told_a_wait(redis_url, run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        window = CalibrationWindow(client, window=3)
        await window.shown("t1", 60.0, 120.0)
        await window.shown("t2", 60.0, 120.0)
        assert await window.ended("t1", "presale", 90.0, served=True)
        assert await window.ended("t2", "presale", 30.0, served=False)
        assert not await window.ended("t2", "presale", 30.0, served=True)  # once only
        assert not await window.ended("t9", "presale", 5.0, served=True)  # told nothing
        got = (await window.coverage())["presale"]
        assert (got.outcomes, got.unserved) == (2, 1)
        assert got.p90 == coverage([(90.0, 120.0, True), (30.0, 120.0, False)])
        assert got.p50 == coverage([(90.0, 60.0, True), (30.0, 60.0, False)]) == 0.0
        for i in range(5):  # the window keeps the latest 3
            await window.shown(f"u{i}", 10.0, 20.0)
            await window.ended(f"u{i}", "presale", 5.0, served=True)
        assert await client.llen(window_key("presale")) == 3
        assert (await window.coverage())["presale"].p50 == 1.0
        await client.aclose()
    run(scenario())


def test_the_desk_records_what_it_told_and_the_metric_publishes_the_coverage(redis_url, run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        dispatcher = await GatewayDispatcher(redis_url, policy_named("strict")).start()
        desk = Desk(GatewayActors(redis_url), dispatcher, client)
        try:
            await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 1))
            await desk.catalogue.set_presence("ann", "online")
            first = await desk.start_conversation("c0", "app", "presale")  # ann takes it
            assert first.status is None
            waiting = [await desk.start_conversation(f"c{i}", "app", "presale")
                       for i in (1, 2)]
            assert all(v.status is not None for v in waiting)  # told a finite wait
            await desk.leave_queue("c2", waiting[1].record.ticket_id)  # gone unserved
            await desk.close("ann", first.record.ticket_id)  # c1 reaches ann
            got = (await desk.routing.calibration.coverage())["presale"]
            assert (got.outcomes, got.unserved) == (2, 1)
            metrics = DeskMetrics(desk)
            await metrics.refresh()
            families = {f.name: f for f in metrics.collect()}
            outcomes = families["surgedesk_estimate_coverage_outcomes"].samples
            assert [(s.labels, s.value) for s in outcomes] == [({"skill": "presale"}, 2.0)]
            assert families["surgedesk_estimate_coverage_ratio"].samples == []  # too few yet
            window = desk.routing.calibration
            for i in range(MIN_COVERAGE_OUTCOMES):
                await window.shown(f"x{i}", 100.0, 200.0)
                await window.ended(f"x{i}", "presale", 150.0 if i % 2 else 50.0,
                                   served=i % 4 != 3)
            await metrics.refresh()
            ratio = {s.labels["quantile"]: s.value for s in {
                f.name: f for f in metrics.collect()}["surgedesk_estimate_coverage_ratio"].samples}
            want = await window.coverage()
            assert ratio == {"0.5": pytest.approx(want["presale"].p50),
                             "0.9": pytest.approx(want["presale"].p90)}
        finally:
            await desk.shutdown()
            await dispatcher.service.stop()
            await client.aclose()
    run(scenario())
