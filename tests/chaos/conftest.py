"""The engine as deployed, for fault injection: ``surgedesk serve`` in its own process (the
gateway), its shard hosts and dispatcher as detached named actors on the session's Ray, and a
Redis server of the test's own -- each of which a test may kill."""

import contextlib
import os
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



def desk_file(path, agents, capacity):
    lines = [f'[routing]\npolicy = "{POLICY}"\nshards = 2\n']
    for a in range(agents):
        lines.append(f'[[agents]]\nid = "agent-{a}"\nskills = {{ presale = 1.0 }}\n'
                     f"capacity = {capacity}\n")
    path.write_text("\n".join(lines))
    return path


def kill_named_actors():
    import ray

    from surgedesk.adapters.ray.shards import NAMESPACE

    for name in ("dispatcher", *(f"shard-{i}" for i in range(8))):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    time.sleep(0.5)


class Engine:
    """One deployment: Redis, the actors and a gateway process, each breakable."""

    def __init__(self, tmp_path: Path, agents: int, capacity: int) -> None:
        import ray

        self.tmp = tmp_path
        self.redis = EmbeddedRedis(tmp_path / "redis").start()
        self.config = desk_file(tmp_path / "desk.toml", agents, capacity)
        self.ray_address = ray.get_runtime_context().gcs_address
        self.port = free_port()
        self.gateway: subprocess.Popen | None = None
        self.starts = 0

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start_gateway(self, timeout_s=60.0):
        self.starts += 1
        log = open(self.tmp / f"gateway-{self.starts}.log", "w")  # noqa: SIM115 - the child's
        env = {**os.environ, "REDIS_URL": self.redis.url, "RAY_ADDRESS": self.ray_address,
               "SURGEDESK_TOKEN_SECRET": SECRET.decode()}
        self.gateway = subprocess.Popen(
            [sys.executable, "-m", "surgedesk", "serve", "--port", str(self.port),
             "--metrics-port", "0", "--config", str(self.config), "--data-dir",
             str(self.tmp / "data"), "--tick-s", "0.2", "--reconcile-s", "5"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s=60.0):
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.gateway.poll() is None, self.log()
                with contextlib.suppress(grpc.RpcError):
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == (
                            health_pb2.HealthCheckResponse.SERVING):
                        return
                time.sleep(0.2)
        raise AssertionError(f"gateway not healthy in {timeout_s} s: {self.log()}")

    def kill_gateway(self):
        self.gateway.send_signal(signal.SIGKILL)
        self.gateway.wait()

    def log(self):
        return (self.tmp / f"gateway-{self.starts}.log").read_text()[-3000:]

    def stop(self):
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGTERM)
            try:
                self.gateway.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_gateway()
        kill_named_actors()
        self.redis.stop()


@pytest.fixture
def engine(ray_session, tmp_path):
    kill_named_actors()  # another test's deployment, if any
    deployment = Engine(tmp_path, PLAN.agents, PLAN.capacity)
    deployment.start_gateway()
    yield deployment
    deployment.stop()
