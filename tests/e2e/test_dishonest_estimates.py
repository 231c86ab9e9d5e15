"""A desk made dishonest on purpose (the waits it tells scaled down: ``surgedesk serve
--estimate-scale``): its own live coverage metric leaves the band, and the alert rule fires on
what the metric then says, evaluated by promtool as Prometheus would."""

import subprocess
import textwrap

import pytest
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest

from surgedesk.adapters.metrics.collector import DeskMetrics
from surgedesk.engine.dispatcher import EstimatorConfig
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import as_agent, served
from tests.e2e.test_prometheus import ROOT, _binary

CUSTOMERS = 230  # the alert needs 200 outcomes in the skill's window


def coverage_of(text: str, quantile: str, skill: str) -> float:
    prefix = f'surgedesk_estimate_coverage_ratio{{quantile="{quantile}",skill="{skill}"}} '
    (line,) = [x for x in text.splitlines() if x.startswith(prefix)]
    return float(line.removeprefix(prefix))


def test_estimates_scaled_down_leave_the_band_and_the_alert_fires(redis_url, run, tmp_path):
    promtool = _binary("promtool")
    told_a_tenth = EstimatorConfig(shown_scale=0.1)

    async def scenario():
        async with served(redis_url, with_desk=True, estimator=told_a_tenth) as (channel, desk):
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            skill = "rehearsal"
            await admin.UpsertSkill(admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(
                name=skill, expected_handle_seconds=0.05)))
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
                agent_id="quick", skills={skill: 1.0}, capacity=1)))
            online = agent_pb2.SetPresenceRequest(agent_id="quick",
                                                  presence=common_pb2.PRESENCE_ONLINE)
            await agents.SetPresence(online)
            for i in range(CUSTOMERS):  # a line builds
                await customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id=f"r{i}", channel=common_pb2.CHANNEL_APP, skill=skill))
            for _ in range(CUSTOMERS):  # the agent serves it, one conversation at a time
                held = (await agents.SetPresence(online)).active_ticket_ids
                await agents.CloseTicket(agent_pb2.CloseTicketRequest(ticket_id=held[0]),
                                         metadata=as_agent("quick"))
            metrics = DeskMetrics(desk)
            await metrics.refresh()
            registry = CollectorRegistry()
            registry.register(metrics)
            return generate_latest(registry).decode(), skill

    text, skill = run(scenario())
    p90 = coverage_of(text, "0.9", skill)
    outcomes = [x for x in text.splitlines()
                if x.startswith(f'surgedesk_estimate_coverage_outcomes{{skill="{skill}"}}')]
    seen = float(outcomes[0].split()[-1])
    assert seen >= 200 and p90 < 0.85  # told a tenth of their wait: far fewer within it

    # The rule, on the values this run's engine exported, held for 20 minutes.
    (tmp_path / "alerts_test.yml").write_text(textwrap.dedent(f"""\
        rule_files: [{ROOT / "deploy/prometheus/alerts.yml"}]
        evaluation_interval: 1m
        tests:
          - interval: 1m
            input_series:
              - series: 'surgedesk_estimate_coverage_ratio{{quantile="0.9",skill="{skill}"}}'
                values: '{p90}x30'
              - series: 'surgedesk_estimate_coverage_outcomes{{skill="{skill}"}}'
                values: '{seen}x30'
            alert_rule_test:
              - eval_time: 10m
                alertname: SurgedeskEstimatesDishonest
                exp_alerts: []
              - eval_time: 20m
                alertname: SurgedeskEstimatesDishonest
                exp_alerts:
                  - exp_labels: {{severity: warning, quantile: "0.9", skill: {skill}}}
                    exp_annotations:
                      summary: "Wait estimates of {skill} have left their band (0.9)"
                      description: "__DESCRIPTION__"
        """).replace("__DESCRIPTION__", description(skill, p90)))
    done = subprocess.run([promtool, "test", "rules", str(tmp_path / "alerts_test.yml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def description(skill: str, value: float) -> str:
    """The rule's description as Prometheus renders it (humanizePercentage)."""
    percent = f"{value * 100:.4g}%"
    return (f"Of the latest customers of {skill} told a wait, {percent} waited within the 0.9 "
            "quantile they were told (honest: 0.5 and 0.9). The estimator no longer matches how "
            "this line drains: check staffing changes, abandonment and priority traffic.")


pytestmark = pytest.mark.slow
