"""A real Prometheus scrapes a running engine; PromQL sees what a scripted scenario did.

Prometheus and promtool are the Debian package ``prometheus`` (``.ci/run`` installs it). Without
them these tests skip on a developer machine and fail in CI.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from surgedesk.adapters.desk.catalogue import AgentProfile
from surgedesk.adapters.metrics.exposition import serve_metrics
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.v1 import admin_pb2, agent_pb2, common_pb2, customer_pb2
from tests.e2e.helpers import free_port, served

ROOT = Path(__file__).resolve().parents[2]
S = common_pb2


def _binary(name):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs the Debian package prometheus")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return path



def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback only
        return reply.read().decode()


def query(base, promql):
    body = json.loads(http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql})))
    assert body["status"] == "success", body
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
            for r in body["data"]["result"]}


def test_alert_rules_and_scrape_config_pass_promtool():
    promtool = _binary("promtool")
    for args in (["check", "rules", "deploy/prometheus/alerts.yml"],
                 ["check", "config", "deploy/prometheus/prometheus.yml"]):
        done = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrapes_the_engine_and_promql_sees_the_scenario(redis_url, run, tmp_path):
    prometheus, promtool = _binary("prometheus"), _binary("promtool")

    async def scenario():
        async with served(redis_url, rules=ServiceRules(queue_target_s=0), with_desk=True) as (
                _channel, desk):
            metrics = await serve_metrics(desk, port=0, refresh_s=0.2)
            try:
                await drive_and_check(metrics, prometheus, promtool, tmp_path)
            finally:
                await metrics.stop()

    run(scenario())


async def drive_and_check(metrics, prometheus, promtool, tmp_path):
    # ``served`` builds its server without the gRPC metrics (surgedesk serve has
    # them): the scenario runs through a second, instrumented server on the same desk.
    import grpc

    from surgedesk.adapters.grpc.authorization import Gate
    from surgedesk.adapters.grpc.limits import Limits
    from surgedesk.adapters.grpc.server import build_server
    from surgedesk.adapters.identity.tokens import TokenVerifier
    from surgedesk.v1 import admin_pb2_grpc, agent_pb2_grpc, customer_pb2_grpc
    from tests.e2e.helpers import SECRET, as_agent, gateway_channel

    desk = metrics.desk_metrics.desk
    gate = Gate(TokenVerifier(SECRET), Limits.unlimited())
    server, port = await build_server(desk, "127.0.0.1:0", gate,
                                      metrics=metrics.grpc_metrics)
    await server.start()
    instrumented = gateway_channel(f"127.0.0.1:{port}")
    try:
        customers = customer_pb2_grpc.CustomerServiceStub(instrumented)
        agents = agent_pb2_grpc.AgentServiceStub(instrumented)
        admin = admin_pb2_grpc.AdminServiceStub(instrumented)
        await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="ann", skills={"presale": 1.0},
                                                capacity=1)))
        await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="bob", skills={"presale": 1.0},
                                                capacity=1)))
        await agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id="ann",
                                                              presence=S.PRESENCE_ONLINE))
        await agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id="bob",
                                                              presence=S.PRESENCE_AWAY))
        tickets = []
        for i in range(3):
            reply = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"c{i}", channel=S.CHANNEL_APP, skill="presale",
                first_message="hello"))
            tickets.append(reply.ticket.ticket_id)
        await asyncio.sleep(0.3)  # the second customer waits a moment
        await agents.CloseTicket(agent_pb2.CloseTicketRequest(ticket_id=tickets[0]),
                                 metadata=as_agent("ann"))
        with pytest.raises(grpc.aio.AioRpcError):
            await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=""))

        text = http_get(f"http://127.0.0.1:{metrics.port}/metrics")
        linted = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                                text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr
        assert "# HELP surgedesk_queue_wait_seconds " in text

        web = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - " + str(ROOT / "deploy/prometheus/alerts.yml") + "\n"
            "scrape_configs:\n  - job_name: surgedesk\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{metrics.port}']\n")
        proc = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{web}"
        try:
            expected = {
                'surgedesk_queue_length{skill="presale"}': 1.0,
                'surgedesk_agents{status="online"}': 1.0,
                'surgedesk_agents{status="away"}': 1.0,
                'surgedesk_tickets_total{outcome="served"}': 2.0,
                'sum(surgedesk_grpc_server_handled_total{grpc_method="StartConversation",'
                'grpc_code="OK"})': 3.0,
                'sum(surgedesk_grpc_server_handled_total{grpc_method="GetQueueStatus",'
                'grpc_code="INVALID_ARGUMENT"})': 1.0,
                'up{job="surgedesk"}': 1.0,
            }
            deadline = time.monotonic() + 60
            seen = {}
            while time.monotonic() < deadline:
                try:
                    seen = {q: list(query(base, q).values()) for q in expected}
                except OSError:
                    seen = {}
                if all(seen.get(q) == [v] for q, v in expected.items()):
                    break
                await asyncio.sleep(0.5)
            assert all(seen.get(q) == [v] for q, v in expected.items()), seen
            # Customer c1 waited in line for ann; c0 was served at once: p90 within the buckets.
            p90 = query(base, 'histogram_quantile(0.9, sum by (le) '
                              '(surgedesk_queue_wait_seconds_bucket{skill="presale"}))')
            assert len(p90) == 1 and 0 < next(iter(p90.values())) <= 1.0
            counted = query(base, 'surgedesk_queue_wait_seconds_count{skill="presale"}')
            assert list(counted.values()) == [2.0]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    finally:
        await instrumented.close()
        await server.stop(None)


def test_the_dashboard_is_grafana_json_and_names_only_metrics_that_exist(redis_url, run):
    dashboard = json.loads((ROOT / "deploy/grafana/surgedesk.json").read_text())
    for key in ("uid", "title", "panels", "schemaVersion"):
        assert key in dashboard
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for p in dashboard["panels"]:
        assert p["type"] in ("timeseries", "barchart", "stat", "gauge") and p["targets"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"}

    async def exposed():
        async with served(redis_url, with_desk=True) as (channel, desk):
            metrics = await serve_metrics(desk, port=0)
            try:
                await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 1))
                await desk.catalogue.set_presence("ann", "online")
                await desk.start_conversation("c1", "app", "presale", 0, "hi")
                await metrics.desk_metrics.refresh()
                return http_get(f"http://127.0.0.1:{metrics.port}/metrics")
            finally:
                await metrics.stop()

    text = run(exposed())
    names = set(re.findall(r"^(surgedesk_[a-z_]+)", text, re.MULTILINE))
    for name, kind in re.findall(r"^# TYPE (surgedesk_[a-z_]+) (\w+)", text, re.MULTILINE):
        names.add(name)  # a family with no series yet (no alarm raised so far) still exists
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    for expr in exprs:
        for name in re.findall(r"surgedesk_[a-z_]+", expr):
            assert name in names, f"{name} (in {expr!r}) is not exposed"
