import random

from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.queues import TicketQueue, class_of, pack_key, unpack_key


@given(st.integers(-9, 9), st.floats(-1e9, 1e9), st.integers(0, 2**40))
def test_packed_keys_round_trip(cls, due, seq):
    c, d, s = unpack_key(pack_key((cls, due, seq)))
    assert (c, s) == (cls, seq) and abs(d - due) <= 1e-6 * max(1.0, abs(due))
    assert class_of(pack_key((cls, due, seq))) == cls


@given(st.lists(st.tuples(st.integers(-3, 0), st.floats(0, 1e6)), min_size=2, max_size=60))
def test_packed_keys_order_like_their_tuples(raw):
    keys = [(c, round(d, 6), i) for i, (c, d) in enumerate(raw)]
    assert sorted(keys) == sorted(keys, key=pack_key)


def test_queue_serves_lower_class_then_earlier_due_then_arrival():
    q = TicketQueue()
    q.add(pack_key((0, 5.0, 0)), "regular-early")
    q.add(pack_key((-1, 9.0, 1)), "vip-late")
    q.add(pack_key((0, 5.0, 2)), "regular-same-time")
    q.add(pack_key((0, 1.0, 3)), "transferred-kept-place")
    assert [tid for _, tid in q] == [
        "vip-late", "transferred-kept-place", "regular-early", "regular-same-time"]
    assert q.head()[1] == "vip-late"


@given(st.lists(st.tuples(st.integers(-2, 0), st.integers(0, 1000)), min_size=1, max_size=80),
       st.randoms(use_true_random=False))
def test_rank_counts_exactly_the_tickets_ahead(raw, rnd):
    q = TicketQueue()
    keys = []
    for i, (c, due) in enumerate(raw):
        k = pack_key((c, float(due), i))
        q.add(k, f"t{i}")
        keys.append(k)
    rnd.shuffle(keys)
    for k in keys[: len(keys) // 3]:
        q.remove(k)
    live = sorted(keys[len(keys) // 3:])
    assert len(q) == len(live)
    assert [k for k, _ in q] == live
    for i, k in enumerate(live):
        assert q.rank(k) == i
    for cls in q.classes():
        head = q.class_head(cls)
        assert head is not None and head[0] == min(k for k in live if class_of(k) == cls)


def test_a_large_queue_keeps_order_and_ranks():
    q = TicketQueue()
    rng = random.Random(4)
    keys = [pack_key((-rng.randrange(3), float(i), i)) for i in range(20000)]
    for i, k in enumerate(keys):
        q.add(k, f"t{i}")
    ordered = sorted(keys)
    assert q.rank(ordered[12345]) == 12345
    for k in ordered[:500]:
        assert q.head()[0] == k
        q.remove(k)
    assert len(q) == 19500
