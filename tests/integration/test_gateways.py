"""Several gateways over one Redis, each with its own actor hosts (``shared``) and its own copy
of the dispatcher (``replica``) following the one routing log: random customers and agents,
each call on a random gateway of three, checked against what one desk must do.

After every step, once the copies have read the whole log: every copy is the same dispatcher
(to the last bit), no ticket was ever assigned twice, no agent holds more than its capacity,
every assignment a copy decided reached its ticket (the dispatcher's holdings are the tickets'
own agents), nobody waits while an agent has a free slot, and every ticket is where the model
says (waiting, with an agent, or ended).
"""

from __future__ import annotations

import asyncio
import time

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from surgedesk.adapters.desk.catalogue import AgentProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.dispatch_journal import STREAM, seq_key
from surgedesk.adapters.redis.ticket_actor import ReadTicket
from surgedesk.engine.snapshot import snapshot_of
from tests.core_driver import FakeClock

AGENTS = ["ann", "bob", "chen"]
CAPACITY = 2
CUSTOMERS = [f"c{i}" for i in range(8)]
GATEWAYS = 3


class Gateways(RuleBasedStateMachine):
    def __init__(self, url: str) -> None:
        super().__init__()
        redis.Redis.from_url(url).flushall()
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(1_000.0)
        self.desks: list[Desk] = []
        self.dispatchers: list[GatewayDispatcher] = []
        for _ in range(GATEWAYS):
            client = redis_client(url)
            dispatcher = self.run(GatewayDispatcher(url, clock=self.clock, client=client,
                                                  replica=True).start())
            shards = GatewayActors(url, self.clock, client=client, shared=True)
            self.dispatchers.append(dispatcher)
            self.desks.append(Desk(shards, dispatcher, client, clock=self.clock))
        for agent in AGENTS:
            self.run(self.desks[0].catalogue.upsert_agent(AgentProfile(agent, {"presale": 1.0}, CAPACITY)))
        self.online: set[str] = set()
        self.open: dict[str, str] = {}  # customer -> its open ticket
        self.ended: set[str] = set()
        self.assigned_ever: dict[str, str] = {}  # ticket -> the one agent it ever reached

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        for dispatcher in self.dispatchers:
            self.run(dispatcher.service.stop())
        for desk in self.desks:
            self.run(desk.shutdown())
        self.loop.close()

    def settle(self) -> None:
        """Until every copy has applied the whole log (the copies follow it on their own)."""
        target = int(redis.Redis.from_url(self.url).get(seq_key(STREAM)) or 0)
        deadline = time.monotonic() + 5.0
        while any(d.service.applied < target for d in self.dispatchers):
            assert time.monotonic() < deadline, "a copy of the dispatcher stopped following"
            self.run(asyncio.sleep(0.005))

    def record(self, ticket_id: str):
        return self.run(self.desks[0].actors.ask(ticket_id, ReadTicket())).record

    @rule(gateway=st.integers(0, GATEWAYS - 1), agent=st.sampled_from(AGENTS))
    def agent_comes_online(self, gateway, agent):
        self.run(self.desks[gateway].catalogue.set_presence(agent, "online"))
        self.online.add(agent)

    @rule(gateway=st.integers(0, GATEWAYS - 1), customer=st.sampled_from(CUSTOMERS))
    def customer_starts(self, gateway, customer):
        self.clock.advance(1.0)
        view = self.run(self.desks[gateway].start_conversation(
            customer, "app", "presale", 0, "hello", f"{customer}-{len(self.ended)}"))
        if customer in self.open:
            assert view.record.ticket_id == self.open[customer]  # resumed, or the same call again
        else:
            assert not view.resumed
            self.open[customer] = view.record.ticket_id

    @precondition(lambda self: self.open)
    @rule(gateway=st.integers(0, GATEWAYS - 1), data=st.data())
    def customer_writes(self, gateway, data):
        customer = data.draw(st.sampled_from(sorted(self.open)))
        self.clock.advance(0.5)
        self.run(self.desks[gateway].post_customer_message(
            customer, self.open[customer], "still there?", ""))

    @precondition(lambda self: self.open)
    @rule(gateway=st.integers(0, GATEWAYS - 1), data=st.data())
    def the_conversation_ends(self, gateway, data):
        customer = data.draw(st.sampled_from(sorted(self.open)))
        ticket = self.open.pop(customer)
        self.clock.advance(2.0)
        record = self.record(ticket)
        if record.state.value == "QUEUED":
            self.run(self.desks[gateway].leave_queue(customer, ticket))
        else:
            self.run(self.desks[gateway].close(record.agent_id, ticket, "done"))
        self.ended.add(ticket)

    @invariant()
    def one_desk_whatever_the_gateway(self):
        self.settle()
        cores = [snapshot_of(d.service.core) for d in self.dispatchers]
        assert cores[1] == cores[0] and cores[2] == cores[0], "the copies disagree"
        holdings = self.run(self.dispatchers[0].holdings())
        held = {t: a for a, tickets in holdings.items() for t in tickets}
        assert all(len(tickets) <= CAPACITY for tickets in holdings.values())
        waiting = 0
        for customer, ticket in self.open.items():
            record = self.record(ticket)
            assert record.is_open and record.customer_id == customer
            if record.state.value == "QUEUED":
                assert ticket not in held, f"{ticket} decided for {held.get(ticket)}, never told"
                core = self.dispatchers[0].service.core
                assert core.is_waiting(ticket)
                # (a returning customer may wait a while for their last agent: sticky)
                waiting += core.waiting_ticket(ticket).preferred_agent_id is None
            else:
                assert held.get(ticket) == record.agent_id, f"{ticket}: routing and ticket differ"
                first = self.assigned_ever.setdefault(ticket, record.agent_id)
                assert first == record.agent_id, f"{ticket} reached {first} and {record.agent_id}"
        for ticket in self.ended:
            assert not self.record(ticket).is_open and ticket not in held
        free = sum(CAPACITY - len(holdings.get(a, [])) for a in self.online)
        assert not (waiting and free), f"{waiting} wait while {free} slots are free"


def test_three_gateways_are_one_desk(redis_url):
    run_state_machine_as_test(
        lambda: Gateways(redis_url),
        settings=settings(max_examples=30, stateful_step_count=30, deadline=None,
                          suppress_health_check=list(HealthCheck)))
