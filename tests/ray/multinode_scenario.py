"""Run as a script (its own Ray driver): two nodes, shard hosts spread, one node removed.

Prints one JSON line with what it saw; tests/ray/test_multinode.py checks it.
"""

import asyncio
import json
import sys
import time

import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from surgedesk.adapters.ray.shards import ShardClient, ShardHost
from surgedesk.adapters.redis.ticket_actor import ReadTicket as Read
from surgedesk.engine.sharding import shard_of
from surgedesk.engine.ticket import AssignAgent, OpenTicket


def main(redis_url: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1, resources={"worker": 1})
    ray.init(address=cluster.address, namespace="surgedesk", logging_level="ERROR",
             log_to_driver=False)
    cluster.wait_for_nodes()
    # The worker's raylet must have reported in before anything is placed on it: a soft
    # affinity to a node the scheduler does not know yet falls back to the head (seen on a
    # machine busy with the rest of the suite).
    settle = time.monotonic() + 60
    while ray.available_resources().get("worker", 0) < 1 and time.monotonic() < settle:
        time.sleep(0.2)
    # Placed half on each node (soft: when a node goes, Ray may restart them elsewhere). The
    # SPREAD strategy is best effort and on a loaded machine may put all on the head node.
    node_ids = [cluster.head_node.node_id, worker.node_id]

    def place(i: int, attempt: int):
        return ShardHost.options(name=f"mn-shard-{i}-{attempt}", max_restarts=-1,
                                 max_task_retries=-1, num_cpus=0,
                                 scheduling_strategy=NodeAffinitySchedulingStrategy(
                                     node_ids[i % 2], soft=True)).remote(i, redis_url)

    hosts = [place(i, 0) for i in range(4)]
    # Soft affinity is best effort: a host that landed on the wrong node while the machine was
    # busy is placed again (what is under test is recovery after a node goes, not placement).
    for attempt in range(1, 6):
        stats = ray.get([h.statistics.remote() for h in hosts])
        wrong = [i for i, st in enumerate(stats) if st["node_id"] != node_ids[i % 2]]
        if not wrong:
            break
        for i in wrong:
            ray.kill(hosts[i], no_restart=True)
            hosts[i] = place(i, attempt)
    nodes_before = ray.get([h.statistics.remote() for h in hosts])

    async def fill():
        client = ShardClient(hosts)
        ids = [f"mn{i}" for i in range(40)]
        await asyncio.gather(*[client.ask(t, OpenTicket(t, f"c{t}", "app", "s", 0, "hi"))
                               for t in ids])
        await asyncio.gather(*[client.ask(t, AssignAgent("ann", 1.0)) for t in ids])
        return ids

    ids = asyncio.run(fill())
    worker_node = worker.node_id
    on_worker = [s["shard"] for s in nodes_before if s["node_id"] == worker_node]
    cluster.remove_node(worker)
    deadline = time.monotonic() + 90
    after = None
    while time.monotonic() < deadline:
        try:
            after = ray.get([h.statistics.remote() for h in hosts], timeout=10)
            if all(s["node_id"] != worker_node for s in after):
                break
        except Exception:
            pass
        time.sleep(0.5)

    async def check():
        client = ShardClient(hosts)
        replies = await asyncio.gather(*[client.ask(t, Read()) for t in ids])
        return [r.record.agent_id for r in replies], [r.record.state.value for r in replies]

    agents, states = asyncio.run(check())
    print(json.dumps({
        "nodes_before": sorted({s["node_id"] for s in nodes_before}),
        "shards_on_removed_node": on_worker,
        "nodes_after": sorted({s["node_id"] for s in after or []}),
        "removed": worker_node,
        "tickets_on_moved_shards": sum(1 for t in ids if shard_of(t, 4) in on_worker),
        "agents": sorted(set(agents)), "states": sorted(set(states)), "tickets": len(ids),
    }))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
