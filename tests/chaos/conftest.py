"""The engine as deployed on a Ray cluster, for fault injection: a cluster of two Ray nodes on
this machine (``ray.cluster_utils.Cluster``: a head and a worker, each its own raylet), a Redis
server of the test's own, and ``surgedesk serve --hosting ray --gateways 3`` -- the supervisor,
with three gateways Ray spreads over the nodes -- each of which a test may kill."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from surgedesk.adapters.redis.embedded import EmbeddedRedis
from tests.chaos.surge import SurgePlan
from tests.e2e.helpers import free_port

SECRET = b"chaos-tests-secret-0123456789abcdefghij"
FULL = os.environ.get("SURGEDESK_CHAOS") == "full"  # the long form; CI runs the reduced one
POLICY = "strict"
PLAN = SurgePlan(customers=600, arrival_s=40.0, agents=12) if FULL else SurgePlan()
GATEWAYS = 3

# "[gateway 0] surgedesk serving on ... gateway-0 placed by Ray on node N, pid P, ..." and
# "surgedesk: gateway 1 restarted by Ray (pid P): surgedesk serving on ... on node N, ..."
SERVING = re.compile(r"gateway[ -](\d+)\b.*placed by Ray on node (\w+), pid (\d+)")


def desk_file(path, agents, capacity):
    lines = [f'[routing]\npolicy = "{POLICY}"\n']
    for a in range(agents):
        lines.append(f'[[agents]]\nid = "agent-{a}"\nskills = {{ presale = 1.0 }}\n'
                     f"capacity = {capacity}\n")
    path.write_text("\n".join(lines))
    return path


class Engine:
    """One deployment: two Ray nodes, Redis, and the supervisor with its gateways."""

    def __init__(self, tmp_path: Path, agents: int, capacity: int) -> None:
        from ray.cluster_utils import Cluster

        self.tmp = tmp_path
        os.environ.setdefault("RAY_worker_niceness", "0")  # as surgedesk serve starts Ray
        # A gateway takes a CPU: the head has room for two of the three, so at least one is
        # placed on the worker (SPREAD alone is best effort).
        self.cluster = Cluster(initialize_head=True, connect=False,
                               head_node_args={"num_cpus": GATEWAYS - 1,
                                               "include_dashboard": False})
        self.worker = self.cluster.add_node(num_cpus=2)
        self.cluster.wait_for_nodes()
        self.redis = EmbeddedRedis(tmp_path / "redis").start()
        self.config = desk_file(tmp_path / "desk.toml", agents, capacity)
        self.port = free_port()
        self.supervisor: subprocess.Popen | None = None
        self.log_path = tmp_path / "serve.log"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s=180.0):
        env = {**os.environ, "REDIS_URL": self.redis.url, "RAY_ADDRESS": self.cluster.address,
               "SURGEDESK_TOKEN_SECRET": SECRET.decode()}
        with self.log_path.open("w") as log:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "surgedesk", "serve", "--hosting", "ray", "--gateways",
                 str(GATEWAYS), "--port", str(self.port), "--metrics-port", "0", "--config",
                 str(self.config), "--data-dir", str(self.tmp / "data"), "--tick-s", "0.2",
                 "--reconcile-s", "5", "--drain-grace-s", "5"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while "surgedesk serving on" not in self.log():
            assert self.supervisor.poll() is None, self.log()
            assert time.monotonic() < deadline, f"not serving in {timeout_s} s: {self.log()}"
            time.sleep(0.2)
        self.wait_healthy()

    def wait_healthy(self, timeout_s=60.0):
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                with contextlib.suppress(grpc.RpcError):
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == (
                            health_pb2.HealthCheckResponse.SERVING):
                        return
                time.sleep(0.2)
        raise AssertionError(f"no gateway healthy in {timeout_s} s: {self.log()}")

    def gateways(self) -> dict[int, tuple[str, int]]:
        """Gateway index -> (node id, pid), as the supervisor last reported it."""
        found = {}
        for line in self.log().splitlines():
            m = SERVING.search(line)
            if m:
                found[int(m.group(1))] = (m.group(2), int(m.group(3)))
        return found

    def kill_gateway(self, index: int) -> int:
        """``kill -9`` the process of gateway ``index``; its pid."""
        pid = self.gateways()[index][1]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, index: int, old_pid: int, timeout_s=120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.gateways()[index][1] == old_pid:
            assert time.monotonic() < deadline, f"gateway {index} not back: {self.log()}"
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self):
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(60)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()
        self.cluster.shutdown()
        self.redis.stop()


@pytest.fixture
def engine(tmp_path):
    deployment = Engine(tmp_path, PLAN.agents, PLAN.capacity)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
        # pytest shows a test's captured output when it fails: the supervisor's log then says
        # which gateway did what (started, restarted by Ray, stopped).
        with contextlib.suppress(OSError):
            print("---- surgedesk serve (supervisor and gateways) ----\n"
                  + deployment.log()[-20_000:])
