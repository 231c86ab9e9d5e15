"""An ordered queue of waiting tickets with O(log n) enqueue, removal, head and rank.

Who runs this: the dispatcher (one per routing domain), single-threaded.

Order is the :data:`QueueKey` ``(priority_class, due_s, seq)``: the lower class is served first
(VIP tiers map to lower classes), then the earlier due time (the arrival time of a conversation,
the SLA deadline of a work order -- earliest deadline first), then the engine-wide arrival
sequence number, which makes every key unique and the order total and deterministic.

The key is stored packed into one Python int (:func:`pack_key`) that orders exactly like the
tuple: comparing two ints is a single C comparison, where comparing nested tuples walks them in
Python -- on a line of a million tickets that is most of the cost of a decision.

Backed by one :class:`sortedcontainers.SortedList` per priority class, whose positional index
makes ``rank`` a tree walk instead of a scan. Costs (n = tickets in this queue, C = classes
present, a handful): ``add`` O(log n) amortised, ``remove`` O(log n), ``head`` and
``class_head`` O(1), ``rank`` O(C + log n), ``__len__`` O(1).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedList

QueueKey = tuple[int, float, int]

_SEQ_BITS = 48  # up to 2.8e14 tickets per dispatcher life
_DUE_BITS = 64  # microseconds, offset so that any time within +-292,000 years is positive
_DUE_OFFSET = 1 << 63
_CLASS_OFFSET = 1 << 15


def pack_key(key: QueueKey) -> int:
    """Pack ``(priority_class, due_s, seq)`` into one int with the same order. O(1).

    ``due_s`` is kept to the microsecond; two due times closer than that fall back to ``seq``.
    """
    cls, due_s, seq = key
    due_us = round(due_s * 1_000_000) + _DUE_OFFSET
    return (((cls + _CLASS_OFFSET) << _DUE_BITS | due_us) << _SEQ_BITS) | seq


def class_of(packed: int) -> int:
    """The priority class of a packed key. O(1)."""
    return (packed >> (_SEQ_BITS + _DUE_BITS)) - _CLASS_OFFSET


def class_floor(cls: int) -> int:
    """The smallest packed key of class ``cls``."""
    return (cls + _CLASS_OFFSET) << (_SEQ_BITS + _DUE_BITS)


def key_parts(packed: int) -> tuple[int, int, int]:
    """A packed key as three ints that fit 64 bits each: ``(priority_class, due_us, seq)``,
    the due time in whole microseconds (as the key holds it). O(1)."""
    seq = packed & ((1 << _SEQ_BITS) - 1)
    rest = packed >> _SEQ_BITS
    due_us = (rest & ((1 << _DUE_BITS) - 1)) - _DUE_OFFSET
    return (rest >> _DUE_BITS) - _CLASS_OFFSET, due_us, seq


def key_from_parts(cls: int, due_us: int, seq: int) -> int:
    """The packed key of :func:`key_parts`'s three ints, exactly. O(1)."""
    return (((cls + _CLASS_OFFSET) << _DUE_BITS | (due_us + _DUE_OFFSET)) << _SEQ_BITS) | seq


def unpack_key(packed: int) -> QueueKey:
    seq = packed & ((1 << _SEQ_BITS) - 1)
    rest = packed >> _SEQ_BITS
    due_us = (rest & ((1 << _DUE_BITS) - 1)) - _DUE_OFFSET
    cls = (rest >> _DUE_BITS) - _CLASS_OFFSET
    return (cls, due_us / 1_000_000, seq)


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    length: int
    head_key: QueueKey | None


class TicketQueue:
    """Waiting tickets in service order, by packed key (see :func:`pack_key`).

    Kept as one sorted list per priority class: a new conversation's key is the largest of its
    class, so an arrival appends at the tail of its class instead of landing mid-list, and a
    class's head is the first element of its list.
    """

    __slots__ = ("_by_class", "_classes", "_ids")

    def __init__(self) -> None:
        self._by_class: dict[int, SortedList] = {}
        self._classes: list[int] = []  # classes present, best first
        self._ids: dict[int, str] = {}

    def add(self, key: int, ticket_id: str) -> None:
        """Insert a ticket. O(log n). Keys are unique (they end in the arrival sequence)."""
        if key in self._ids:
            raise ValueError(f"key already queued for {self._ids[key]!r}")
        cls = class_of(key)
        keys = self._by_class.get(cls)
        if keys is None:
            keys = self._by_class[cls] = SortedList()
            bisect.insort(self._classes, cls)
        keys.add(key)
        self._ids[key] = ticket_id

    def remove(self, key: int) -> str:
        """Remove a ticket by its key and return its id. O(log n). KeyError if absent."""
        ticket_id = self._ids.pop(key)
        cls = class_of(key)
        keys = self._by_class[cls]
        if keys[0] == key:
            del keys[0]
        else:
            keys.remove(key)
        if not keys:
            del self._by_class[cls]
            self._classes.remove(cls)
        return ticket_id

    def discard(self, key: int) -> None:
        """Remove a ticket if present. O(log n)."""
        if key in self._ids:
            self.remove(key)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def classes(self) -> list[int]:
        """The priority classes present, best first. O(1): the list itself, do not modify."""
        return self._classes

    def class_head(self, cls: int) -> tuple[int, str] | None:
        """The first ticket of priority class ``cls``, or None. O(1)."""
        keys = self._by_class.get(cls)
        if not keys:
            return None
        key = keys[0]
        return key, self._ids[key]

    def head(self) -> tuple[int, str] | None:
        """The ticket served next as ``(key, ticket_id)``, or None. O(1)."""
        if not self._classes:
            return None
        key = self._by_class[self._classes[0]][0]
        return key, self._ids[key]

    def head_key(self) -> int | None:
        return self._by_class[self._classes[0]][0] if self._classes else None

    def rank(self, key: int) -> int:
        """How many tickets in this queue are ahead of ``key``. O(C + log n)."""
        cls = class_of(key)
        ahead = 0
        for c in self._classes:
            if c < cls:
                ahead += len(self._by_class[c])
            elif c == cls:
                ahead += self._by_class[c].bisect_left(key)
                break
            else:
                break
        return ahead

    def __len__(self) -> int:
        return len(self._ids)

    def __bool__(self) -> bool:
        return bool(self._ids)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        ids = self._ids
        return ((key, ids[key]) for cls in list(self._classes) for key in self._by_class[cls])

    def statistics(self) -> QueueStatistics:
        head = self.head_key()
        return QueueStatistics(length=len(self._ids),
                               head_key=unpack_key(head) if head is not None else None)
