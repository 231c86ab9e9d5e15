"""The lightweight actor runtime, on a plain asyncio loop with a fake clock."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgedesk.engine.actors import ActorHost
from surgedesk.engine.errors import ActorStopped, Overloaded
from tests.core_driver import FakeClock


class Counter:
    """A behaviour whose store is a dict; it records how it was driven."""

    def __init__(self, delay_s=0.0):
        self.store = {}
        self.loads = []
        self.in_flight = {}
        self.max_in_flight = 0
        self.delay_s = delay_s
        self.load_gate = None

    async def load(self, entity_id):
        self.loads.append(entity_id)
        if self.load_gate is not None:
            await self.load_gate.wait()
        if entity_id == "broken":
            raise RuntimeError("store down")
        return self.store.get(entity_id, [])

    async def receive(self, entity_id, state, message):
        self.in_flight[entity_id] = self.in_flight.get(entity_id, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[entity_id])
        try:
            await asyncio.sleep(self.delay_s)
            if message == "boom":
                raise ValueError("bad message")
            new = [*state, message]
            self.store[entity_id] = new  # "persisted" before the reply
            return new, len(new)
        finally:
            self.in_flight[entity_id] -= 1

    def finished(self, state):
        return bool(state) and state[-1] == "close"


def run(coro):
    return asyncio.run(coro)


def test_messages_to_one_entity_are_handled_one_at_a_time_in_order():
    async def main():
        b = Counter(delay_s=0.001)
        host = ActorHost(b, clock=FakeClock())
        replies = await asyncio.gather(*[host.ask("t1", i) for i in range(20)])
        assert replies == list(range(1, 21))
        assert b.store["t1"] == list(range(20))
        assert b.max_in_flight == 1
        assert b.loads == ["t1"]
    run(main())


def test_different_entities_run_concurrently():
    async def main():
        b = Counter(delay_s=0.01)
        host = ActorHost(b, clock=FakeClock())
        await asyncio.gather(*[host.ask(f"t{i}", "x") for i in range(50)])
        assert host.statistics().active == 50
        assert len(b.loads) == 50
    run(main())


def test_messages_sent_while_loading_wait_and_keep_their_order():
    async def main():
        b = Counter()
        b.load_gate = asyncio.Event()
        host = ActorHost(b, clock=FakeClock())
        host.tell("t1", "a")
        asks = [asyncio.ensure_future(host.ask("t1", m)) for m in "bc"]
        await asyncio.sleep(0.01)
        assert not any(a.done() for a in asks)
        b.load_gate.set()
        assert await asyncio.gather(*asks) == [2, 3]
        assert b.store["t1"] == ["a", "b", "c"]
    run(main())


def test_a_failing_message_fails_only_its_ask_and_changes_nothing():
    async def main():
        b = Counter()
        host = ActorHost(b, clock=FakeClock())
        await host.ask("t1", "a")
        with pytest.raises(ValueError):
            await host.ask("t1", "boom")
        assert await host.ask("t1", "b") == 2
        assert host.statistics().failures_total == 1
    run(main())


def test_a_store_failure_fails_the_waiting_requests_and_the_next_message_retries():
    async def main():
        b = Counter()
        host = ActorHost(b, clock=FakeClock())
        with pytest.raises(RuntimeError):
            await host.ask("broken", "a")
        assert not host.is_active("broken")
        with pytest.raises(RuntimeError):
            await host.ask("broken", "a")
        assert b.loads == ["broken", "broken"]
    run(main())


def test_idle_entities_are_passivated_and_reactivated_from_the_store():
    async def main():
        clock = FakeClock()
        b = Counter()
        host = ActorHost(b, clock=clock, idle_after_s=60)
        await host.ask("t1", "a")
        clock.advance(30)
        await host.ask("t2", "a")
        clock.advance(31)
        assert host.passivate_idle() == 1  # t1 only
        assert not host.is_active("t1") and host.is_active("t2")
        assert await host.ask("t1", "b") == 2  # state came back from the store
        assert b.loads == ["t1", "t2", "t1"]
    run(main())


def test_a_finished_entity_is_passivated_at_once():
    async def main():
        host = ActorHost(Counter(), clock=FakeClock())
        await host.ask("t1", "close")
        assert not host.is_active("t1")
        assert host.statistics().passivations_total == 1
    run(main())


def test_requests_waiting_when_the_host_stops_fail_instead_of_hanging():
    async def main():
        b = Counter(delay_s=10)
        host = ActorHost(b, clock=FakeClock())
        asks = [asyncio.ensure_future(host.ask("t1", i)) for i in range(3)]
        await asyncio.sleep(0.01)
        await host.stop()
        results = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(r, ActorStopped) for r in results)
        with pytest.raises(ActorStopped):
            host.tell("t1", "late")
    run(main())


def test_a_full_mailbox_refuses_instead_of_growing():
    async def main():
        b = Counter(delay_s=0.01)
        host = ActorHost(b, clock=FakeClock(), mailbox_limit=5)
        # one served at once (by its caller), five waiting: the mailbox is full
        asks = [asyncio.ensure_future(host.ask("t1", i)) for i in range(6)]
        await asyncio.sleep(0)
        assert host.statistics().waiting_messages == 5
        with pytest.raises(Overloaded):
            await host.ask("t1", "one too many")
        assert len(await asyncio.gather(*asks)) == 6
    run(main())


def test_an_idle_entity_is_served_in_the_callers_task_and_later_messages_by_its_own():
    async def main():
        b = Counter(delay_s=0.01)
        served_by = []
        receive = b.receive

        async def recording(entity_id, state, message):
            served_by.append((message, asyncio.current_task()))
            return await receive(entity_id, state, message)

        b.receive = recording
        host = ActorHost(b, clock=FakeClock())
        first = asyncio.ensure_future(host.ask("t1", "a"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(host.ask("t1", "b"))  # t1 is busy: this one waits
        assert await asyncio.gather(first, second) == [1, 2]
        (m1, task1), (m2, task2) = served_by
        assert (m1, task1) == ("a", first) and m2 == "b" and task2 not in (first, second)
    run(main())


def test_a_caller_cancelled_while_served_leaves_the_entity_to_reload_and_others_served():
    async def main():
        b = Counter(delay_s=0.01)
        host = ActorHost(b, clock=FakeClock())
        await host.ask("t1", "a")
        doomed = asyncio.ensure_future(host.ask("t1", "b"))  # served by its own caller
        await asyncio.sleep(0)
        waiting = asyncio.ensure_future(host.ask("t1", "c"))
        await asyncio.sleep(0)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert await waiting == 2  # "b" never reached the store; "c" came after "a"
        assert b.store["t1"] == ["a", "c"] and b.loads == ["t1", "t1"]  # reloaded
        assert await host.ask("t1", "d") == 3
    run(main())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(["ask", "tell", "cancel"]),
                          st.integers(0, 3)), min_size=1, max_size=20))
def test_any_mix_of_asks_tells_and_cancelled_callers_keeps_entities_serial_and_true(ops):
    """Whatever the interleaving: one message at a time per entity; what is stored is in the
    order it was sent, without repeats; every tell is stored; every answered ask was stored
    and its answer counts it."""
    async def main():
        b = Counter(delay_s=0.0005)
        host = ActorHost(b, clock=FakeClock())
        sent, asks, told = [], [], []  # sent: in the order the host received them

        async def ask(entity, message):
            sent.append((entity, message))  # ask posts before its first await
            return await host.ask(entity, message)

        for i, (entity, kind, pause) in enumerate(ops):
            message = f"{entity}{i}"
            if kind == "tell":
                sent.append((entity, message))
                host.tell(entity, message)
                told.append((entity, message))
            else:
                asks.append((entity, message, asyncio.ensure_future(ask(entity, message))))
            for _ in range(pause):
                await asyncio.sleep(0)
            if kind == "cancel":
                asks[-1][2].cancel()
        results = await asyncio.gather(*[t for *_, t in asks], return_exceptions=True)
        while host.statistics().running:  # the tells still being served
            await asyncio.sleep(0.001)
        assert b.max_in_flight <= 1
        for entity in "ab":
            stored = b.store.get(entity, [])
            in_order = [m for e, m in sent if e == entity and m in stored]
            assert stored == in_order and len(set(stored)) == len(stored)
            assert all(m in stored for e, m in told if e == entity)
            for (e, message, _), result in zip(asks, results, strict=True):
                if e == entity and not isinstance(result, BaseException):
                    assert stored.index(message) + 1 == result
    run(main())


def test_an_idle_entity_costs_little_memory():
    """An entity whose mailbox is empty holds its state and a few words, not an empty queue:
    a shard keeps thousands of idle tickets in memory."""
    import tracemalloc

    class Quiet:
        async def load(self, entity_id):
            return None

        async def receive(self, entity_id, state, message):
            return message, None

        def finished(self, state):
            return False

    async def main():
        host = ActorHost(Quiet(), clock=FakeClock())
        await host.ask("warm", 0)
        ids = [f"t{i}" for i in range(2000)]
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for entity_id in ids:
            await host.ask(entity_id, 1)
        await asyncio.gather(*[host.ask(entity_id, 2) for entity_id in ids[:100]])
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert host.statistics().active == 2001 and host.statistics().waiting_messages == 0
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        # the ids are the caller's; an activation and its slot in the host are about 150 bytes
        assert grown / len(ids) < 400, grown / len(ids)
    run(main())
