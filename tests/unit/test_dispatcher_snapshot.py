"""The dispatcher's snapshot document (``surgedesk.engine.snapshot``): plain data, versioned, and
the committed fixture of each version restores to the desk it was taken of.

The fixtures ``tests/fixtures/dispatcher-snapshot-v<N>.msgpack`` were made once each by
:func:`fixture_desk` (version 1), :func:`fixture_desk_v2` and :func:`fixture_desk_v3`
(``python -m tests.unit.test_dispatcher_snapshot``) and are never regenerated: a later version
of the engine must restore them as they are.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ConversationEnded,
    PolicyChanged,
    RosterPlanned,
    SkillConfigured,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.patience import PatienceMeter
from surgedesk.engine.policies import POLICY_PRESETS
from surgedesk.engine.queues import key_from_parts, key_parts, pack_key
from surgedesk.engine.roster import PlannedShift
from surgedesk.engine.snapshot import VERSION, core_from, snapshot_of
from tests.core_driver import CoreDriver

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dispatcher-snapshot-v1.msgpack"
FIXTURE_V2 = FIXTURE.with_name("dispatcher-snapshot-v2.msgpack")
FIXTURE_V3 = FIXTURE.with_name("dispatcher-snapshot-v3.msgpack")


def fixture_desk() -> CoreDriver:
    """A desk in mid-flight, with something of everything the core keeps: agents of several
    skills and proficiencies (one away, one wrapping up, one paused), VIPs and work orders in
    line, a customer waiting for their last agent, a relaxation timer, a skill's prior, a
    changed policy, measured rates."""
    d = CoreDriver(POLICY_PRESETS["bullseye"])
    d.send(SkillConfigured("billing", 420.0))
    d.agent("ann", {"presale": 1.0, "aftersale": 0.5}, capacity=2)
    d.agent("bob", {"presale": 1.0}, capacity=1)
    d.agent("chen", {"aftersale": 1.0, "billing": 0.5}, capacity=2)
    d.agent("dana", {"billing": 1.0}, capacity=1, available=False)
    for i in range(8):
        d.clock.advance(7.0)
        d.ticket(f"p{i}", "presale", vip_tier=1 if i % 3 == 0 else 0)
    for i in range(4):
        d.clock.advance(3.0)
        d.ticket(f"b{i}", "billing", deadline_s=d.clock.now_s + 3600.0 - 600 * i)
    d.clock.advance(5.0)
    d.end("bob", sorted(d.core.capacity.get("bob").active)[0])  # bob takes the next one
    d.clock.advance(5.0)
    d.send(ConversationEnded("ann", sorted(d.core.capacity.get("ann").active)[0], 30.0))
    d.ticket("a0", "aftersale")  # chen takes it ...
    d.clock.advance(2.0)
    d.send(TicketRequeued("a0", "chen", "", pause_s=20.0))  # ... declines it, and pauses
    d.ticket("r1", "presale", preferred_agent_id="bob", prefer_window_s=90.0)
    d.clock.advance(1.0)
    d.send(PolicyChanged(((0.0, 1.0), (45.0, 0.5), (150.0, 0.0)), "longest_idle", 75.0))
    d.clock.advance(1.5)
    d.send(AgentPresenceChanged("erin", {"presale": 0.5, "billing": 1.0}, 1, True))
    return d


def fixture_desk_v2() -> CoreDriver:
    """The version-1 desk with what version 2 adds: a staffing plan (ann's shift ends soon,
    an evening shift comes) and a capacity change measured since."""
    d = fixture_desk()
    now = d.clock.now_s
    d.send(RosterPlanned((PlannedShift("ann", {"presale": 1.0, "aftersale": 0.5}, 2, 0.0,
                                       now + 120.0),
                          PlannedShift("bob", {"presale": 1.0}, 1, 0.0, math.inf),
                          PlannedShift("eve", {"presale": 1.0}, 3, now + 600.0, now + 4000.0))))
    d.clock.advance(30.0)
    d.ticket("p-late", "presale")
    return d


def fixture_desk_v3() -> CoreDriver:
    """The version-2 desk with what version 3 adds: customers who gave up, so that the
    patience meter has measured something, and customers waiting long enough to be past the
    first bands of time waited."""
    d = fixture_desk_v2()
    for i in range(4):
        d.clock.advance(20.0)
        d.ticket(f"q{i}", "presale")
    d.clock.advance(15.0)
    d.send(TicketLeft("q1"))
    d.clock.advance(70.0)
    d.send(TicketLeft("q3"))
    return d


def test_a_snapshot_is_plain_data_that_restores_to_the_same_core():
    d = fixture_desk()
    doc = snapshot_of(d.core)
    _assert_plain(doc, "snapshot")
    restored = core_from(msgpack.unpackb(msgpack.packb(doc, use_bin_type=True), raw=False))
    restored.check_invariants()
    assert snapshot_of(restored) == doc
    now = d.clock.now_s + 1.0
    for skill in ("presale", "billing", "aftersale"):
        assert restored.queue_order(skill) == d.core.queue_order(skill)
    for t in list(d.core.iter_waiting()):
        assert restored.queue_status(t.ticket_id, now) == d.core.queue_status(t.ticket_id, now)
    assert restored.statistics() == d.core.statistics()
    assert restored.next_wakeup_s() == d.core.next_wakeup_s()


def test_the_version_1_fixture_restores_to_the_desk_it_was_taken_of():
    core = _restored_fixture(FIXTURE, version=1)
    expected = fixture_desk().core
    _patience_as_before_version_3(expected)
    # what version 2 measures and version 1 did not carry: derived as the snapshot says
    for skill, flow in expected._flows.items():
        flow.busy_backlog_time = core.flow(skill).busy_backlog_time
        assert flow.busy_backlog_time == pytest.approx(
            flow.busy_time / flow.observed_s * flow.backlog_ge.get(0, 0.0))
    assert core.queue_order("presale") == expected.queue_order("presale")
    assert core.queue_order("billing") == expected.queue_order("billing") == ["b3", "b2", "b1", "b0"]
    assert {a.agent_id: sorted(a.active) for a in core.capacity.agents()} == {
        a.agent_id: sorted(a.active) for a in expected.capacity.agents()}
    assert core.waiting_ticket("r1").preferred_agent_id == "bob"
    assert core.policy.selection.mode == "longest_idle"
    assert core.policy.relaxation.steps == ((0.0, 1.0), (45.0, 0.5), (150.0, 0.0))
    assert core.flow("billing").prior_handle_s == 420.0
    now = expected.statistics().now_s + 1.0
    _assert_same_estimates(core, expected, now)
    # and it carries on as the desk would have: the same decisions for the same events
    for event in (TicketQueued("late", "presale", 0), ConversationEnded("erin", "p4", 0.0),
                  ConversationEnded("ann", "p2", 0.0), AgentPresenceChanged(
                      "dana", {"billing": 1.0}, 1, True)):
        assert core.handle(event, now) == expected.handle(event, now)
        now += 40.0
    assert snapshot_of(core) == snapshot_of(expected)


def test_the_version_2_fixture_restores_to_the_desk_it_was_taken_of():
    core = _restored_fixture(FIXTURE_V2, version=2)
    expected = fixture_desk_v2().core
    _patience_as_before_version_3(expected)
    assert snapshot_of(core) == snapshot_of(expected)
    assert [s.agent_id for s in core.roster.shifts] == ["ann", "bob", "eve"]
    now = expected.statistics().now_s + 1.0
    _assert_same_estimates(core, expected, now)
    for event in (TicketQueued("late", "presale", 0), ConversationEnded("ann", "p2", 0.0)):
        assert core.handle(event, now) == expected.handle(event, now)
        now += 40.0
    assert snapshot_of(core) == snapshot_of(expected)


def test_the_version_3_fixture_restores_to_the_desk_it_was_taken_of():
    core = _restored_fixture(FIXTURE_V3, version=3)
    expected = fixture_desk_v3().core
    assert snapshot_of(core) == snapshot_of(expected)
    assert core.flow("presale").patience.abandons == expected.flow("presale").patience.abandons
    assert sum(core.flow("presale").patience.abandons) > 0
    now = expected.statistics().now_s + 1.0
    _assert_same_estimates(core, expected, now)
    # the waiting tickets are back in their bands of time waited: the same bookings follow
    for event in (TicketQueued("late", "presale", 0), TicketLeft("q2"),
                  ConversationEnded("ann", "p2", 0.0)):
        now += 90.0
        assert core.handle(event, now) == expected.handle(event, now)
    assert snapshot_of(core) == snapshot_of(expected)
    _assert_same_estimates(core, expected, now)


def _restored_fixture(path: Path, version: int) -> DispatcherCore:
    doc = msgpack.unpackb(path.read_bytes(), raw=False)
    assert (doc["format"], doc["version"]) == ("surgedesk.dispatcher", version)
    core = core_from(doc)
    core.check_invariants()
    return core


def _assert_same_estimates(core: DispatcherCore, expected: DispatcherCore, now: float) -> None:
    for t in list(expected.iter_waiting()):
        assert core.queue_status(t.ticket_id, now) == expected.queue_status(t.ticket_id, now)


def _patience_as_before_version_3(core: DispatcherCore) -> None:
    """What a document before version 3 restores to: patience meters that have measured
    nothing, counting the waiting tickets from each flow's last update."""
    for flow in core._flows.values():
        meter = flow.patience = PatienceMeter()
        meter.advanced_s = flow.last_s
        meter.restore_waiting((t.queued_s, t.ticket_id) for t in core.iter_waiting()
                              if t.skill == flow.skill)


@pytest.mark.parametrize(("change", "field"), [
    ({"format": "pickle"}, "snapshot.format"),
    ({"version": VERSION + 1}, "snapshot.version"),
    ({"version": None}, "snapshot.version"),
])
def test_a_document_of_another_format_or_version_is_refused(change, field):
    doc = {**snapshot_of(DispatcherCore()), **change}
    with pytest.raises(InvalidArgument) as info:
        core_from(doc)
    assert info.value.field == field


@given(cls=st.integers(-9, 9), due_s=st.floats(-1e10, 1e10, allow_nan=False),
       seq=st.integers(0, (1 << 48) - 1))
def test_a_queue_key_splits_into_three_64_bit_ints_and_back_exactly(cls, due_s, seq):
    packed = pack_key((cls, due_s, seq))
    parts = key_parts(packed)
    assert all(-(1 << 63) <= p < (1 << 63) for p in parts)
    assert key_from_parts(*parts) == packed


def _assert_plain(value, where):
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: key {k!r} is not a string"
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -(1 << 63) <= value < (1 << 64), f"{where}: {value} does not fit 64 bits"
    elif isinstance(value, float):
        assert not math.isnan(value), f"{where} is NaN"
    else:
        assert value is None or isinstance(value, bool | str), f"{where}: {type(value).__name__}"


def test_the_snapshot_benchmark_reports_save_and_load_beside_pickle(tmp_path):
    import json

    from surgedesk.benchmarks.snapshot import main

    out = tmp_path / "snapshot.json"
    assert main(["--queued", "300", "--rounds", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["queued"] == 300
    for key in ("save_us_per_ticket", "load_us_per_ticket", "bytes_per_ticket",
                "save_ratio_to_pickle", "load_ratio_to_pickle"):
        assert row[key] > 0, key


if __name__ == "__main__":  # each made once; a later version must restore them as they are
    made = False
    for path, desk in ((FIXTURE, fixture_desk), (FIXTURE_V2, fixture_desk_v2),
                       (FIXTURE_V3, fixture_desk_v3)):
        if path.exists() and "--force" not in sys.argv:
            continue  # a committed fixture is never regenerated
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgpack.packb(snapshot_of(desk().core), use_bin_type=True))
        print(f"wrote {path}")
        made = True
    if not made:
        raise SystemExit("every fixture exists: a committed fixture is never regenerated")
