"""Break the deployment mid-surge; the engine carries on and the journal proves nothing was
lost, nothing assigned twice, no agent over capacity, streams resumed from their cursors.

The deployment (``conftest.py``): three gateways placed by Ray over two nodes, one Redis. Every
gateway carries the dispatcher's copy that follows the routing log, so "the dispatcher's
process" is a gateway's: killing one kills a dispatcher and its gateway at once.

CI runs the reduced form (150 customers over 12 s). ``SURGEDESK_CHAOS=full`` runs the long
form: 600 customers over 40 s.
"""

import asyncio
import time

import pytest

from tests.chaos.conftest import PLAN, POLICY, SECRET
from tests.chaos.invariants import check
from tests.chaos.surge import RETRY_POLICY_CODES, Surge

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def run_with(engine, break_it, *, strict_retries=False):
    """The surge with ``break_it`` (run in a thread) a quarter of the way in."""
    async def fault():
        await asyncio.get_running_loop().run_in_executor(None, break_it)

    surge = Surge(engine.address, SECRET, PLAN, strict_retries=strict_retries)
    started = time.monotonic()
    ledger = asyncio.run(surge.run(fault, fault_at_s=PLAN.arrival_s / 4, drain_s=60.0))
    summary = check(engine.redis.url, ledger, capacity=PLAN.capacity, policy=POLICY)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(summary)
    return summary


def test_a_gateway_then_a_dispatcher_killed_then_a_ray_node_removed_mid_surge(engine):
    """The head has room for two gateways, so one at least is on the worker. The worker goes
    mid-surge: its gateways wait for room while the head's serve everyone; a node added after
    the surge (as an autoscaler would) gets them, and they serve again."""
    seen = {}

    def break_it():
        before = engine.gateways()
        assert len(before) == 3
        on_worker = [i for i, (node, _) in before.items() if node == engine.worker.node_id]
        first = on_worker[0]
        pid = engine.kill_gateway(first)  # a gateway's process, kill -9
        time.sleep(2.0)
        second = (first + 1) % 3  # another: its copy of the dispatcher goes with it
        engine.kill_gateway(second)
        engine.wait_restarted(first, pid)
        time.sleep(2.0)
        seen.update(before=before, on_worker=[
            i for i, (node, _) in engine.gateways().items() if node == engine.worker.node_id])
        engine.cluster.remove_node(engine.worker)  # a Ray node gone, with its gateways

    summary = run_with(engine, break_it)
    assert summary["retries"]  # the clients did notice, and came back
    assert {node for node, _ in seen["before"].values()} == {
        engine.cluster.head_node.node_id, engine.worker.node_id}
    assert seen["on_worker"], "no gateway was on the worker when it was removed"
    spare = engine.cluster.add_node(num_cpus=2)  # room again: Ray places the worker's there
    deadline = time.monotonic() + 120
    while {node for node, _ in engine.gateways().values()} != {
            engine.cluster.head_node.node_id, spare.node_id}:
        assert time.monotonic() < deadline, engine.log()
        time.sleep(0.2)
    engine.wait_healthy()


def test_the_redis_server_killed_mid_surge(engine):
    def break_it():
        engine.redis.kill()
        time.sleep(2.0)  # every component sees it gone
        engine.redis.start()

    summary = run_with(engine, break_it)
    assert summary["retries"]


def test_a_rolling_restart_of_every_gateway_mid_surge_shows_clients_no_error(engine):
    """SIGHUP: the supervisor drains and replaces each gateway in turn. Clients that follow
    the published retry policy (UNAVAILABLE retried, watches resumed from their cursor) see no
    error: nothing else was retried, and nothing failed."""
    import signal

    def restart():
        before = engine.gateways()
        engine.supervisor.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 180
        while "rolling restart done" not in engine.log():
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.2)
        after = engine.gateways()
        assert all(after[i][1] != before[i][1] for i in before), (before, after)

    summary = run_with(engine, restart, strict_retries=True)
    assert set(summary["retries"]) <= RETRY_POLICY_CODES | {"watch", "assignments"}, summary
