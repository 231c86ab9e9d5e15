"""Kill each component mid-surge; the engine comes back and the journal proves nothing was
lost, nothing assigned twice, no agent over capacity, streams resumed from their cursors.

CI runs the reduced form (150 customers over 12 s, one fault each). ``SURGEDESK_CHAOS=full``
runs the long form: 600 customers over 40 s and three faults of the kind, 8 s apart.
"""

import asyncio
import time

import pytest

from tests.chaos.conftest import FULL, PLAN, POLICY, SECRET
from tests.chaos.invariants import check
from tests.chaos.surge import Surge

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

FAULTS = 3 if FULL else 1


def kill_actor(name):
    import ray

    from surgedesk.adapters.ray.shards import NAMESPACE

    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=False)  # Ray restarts it


def run_with(engine, break_it, *, settle_s=0.0):
    async def fault():
        for n in range(FAULTS):
            if n:
                await asyncio.sleep(8.0)
            await asyncio.get_running_loop().run_in_executor(None, break_it)
            await asyncio.sleep(settle_s)

    surge = Surge(engine.address, SECRET, PLAN)
    started = time.monotonic()
    ledger = asyncio.run(surge.run(fault, fault_at_s=PLAN.arrival_s / 3, drain_s=45.0))
    summary = check(engine.redis.url, ledger, capacity=PLAN.capacity, policy=POLICY)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(summary)
    return summary


def test_the_dispatcher_actor_killed_mid_surge(engine):
    run_with(engine, lambda: kill_actor("dispatcher"))


def test_a_shard_host_killed_mid_surge(engine):
    run_with(engine, lambda: kill_actor("shard-0"))


def test_the_gateway_process_killed_mid_surge(engine):
    def break_it():
        engine.kill_gateway()
        time.sleep(1.0)  # clients see it gone
        engine.start_gateway()

    summary = run_with(engine, break_it)
    assert summary["retries"]  # the clients did notice


def test_the_redis_server_killed_mid_surge(engine):
    def break_it():
        engine.redis.kill()
        time.sleep(2.0)  # every component sees it gone
        engine.redis.start()

    summary = run_with(engine, break_it)
    assert summary["retries"]
