"""Lightweight actors: many small stateful entities, each with its own serial mailbox.

Who runs this: a gateway (thousands of tickets and agents, each kind in its own host) on its
asyncio loop; tests run it on a plain loop. The runtime does no I/O of its own -- loading state
and persisting it are the behaviour's business, injected -- and reads time only through the
clock it is given. (It is the one engine module that uses asyncio: a mailbox is a scheduling
primitive, not I/O.)

Theory of operation
-------------------
An entity is addressed by id. The first message to an id *activates* it: the behaviour's
``load`` brings its state in, and messages that arrive meanwhile wait in the mailbox, in order.
Messages are handled one at a time, in arrival order, by ``receive``, which returns the new
state and the reply; a message that raises gets the error as its reply and leaves the state as
it was. An entity with an empty mailbox owns no task and no queue: an idle entity costs its state
and a small, fixed record (`tests/unit/test_actors.py` bounds it).
An entity is *passivated* (dropped from memory; its state lives in the store) right after a
message leaves it ``finished`` or after a failure that left its state to be reloaded (nothing
in memory is worth keeping then), or by :meth:`ActorHost.passivate_idle` once it has been idle
for ``idle_after_s``. When the host stops, every request still in a mailbox fails with
:class:`~surgedesk.engine.errors.ActorStopped` instead of hanging (as in pykka).

Mailboxes are bounded: past ``mailbox_limit`` waiting messages, a new one is refused with
:class:`~surgedesk.engine.errors.Overloaded` rather than growing memory without bound.

Costs: ask/tell O(1) plus the behaviour's own work; passivate_idle O(active entities).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from surgedesk.engine.errors import ActorStopped, CallerError, Overloaded

S = TypeVar("S")


class Behaviour(Protocol[S]):
    """What an entity does. The host calls these one at a time per entity."""

    async def load(self, entity_id: str) -> S:
        """The entity's state from the store (a fresh state if it has none)."""

    async def receive(self, entity_id: str, state: S, message: Any) -> tuple[S, Any]:
        """Handle one message: return the new state and the reply."""

    def finished(self, state: S) -> bool:
        """Whether the entity can be passivated at once (a closed ticket, say)."""

    # Optional: ``presume(entity_id, message) -> S | None``, a state to start from without
    # loading when ``message`` creates the entity (a new ticket): one store read fewer. The
    # behaviour must detect a wrong guess when it writes (a versioned append) and reload.


@dataclass(slots=True)
class _Envelope:
    message: Any
    reply: asyncio.Future[Any] | None  # None for tell


_NO_MAIL: tuple[()] = ()  # every empty mailbox: an entity holds a deque only while mail waits


@dataclass(slots=True)
class _Activation(Generic[S]):
    entity_id: str
    # An empty deque is 760 bytes, three times the rest of an idle entity; most entities are idle.
    mailbox: deque[_Envelope] | tuple[()] = _NO_MAIL
    state: Any = None
    loaded: bool = False
    running: bool = False
    last_active_s: float = 0.0


def _take(activation: _Activation[Any]) -> _Envelope:
    """The first message waiting for ``activation`` (there is one). O(1)."""
    mailbox = activation.mailbox
    assert isinstance(mailbox, deque)
    envelope = mailbox.popleft()
    if not mailbox:
        activation.mailbox = _NO_MAIL
    return envelope


@dataclass(frozen=True, slots=True)
class HostStatistics:
    active: int
    running: int
    waiting_messages: int
    messages_total: int
    activations_total: int
    passivations_total: int
    failures_total: int


class ActorHost(Generic[S]):
    """Hosts the entities of one kind (tickets, say) in one process."""

    def __init__(self, behaviour: Behaviour[S], *, clock: Callable[[], float],
                 idle_after_s: float = 300.0, mailbox_limit: int = 1000) -> None:
        self._behaviour = behaviour
        self._clock = clock
        self.idle_after_s = idle_after_s
        self.mailbox_limit = mailbox_limit
        self._active: dict[str, _Activation[S]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one asks run on
        self._serving: set[asyncio.Task[Any]] = set()  # callers serving their own request
        self._stopping: set[asyncio.Task[Any]] = set()  # those stop() cancelled
        self._stopped = False
        self._messages = 0
        self._activations = 0
        self._passivations = 0
        self._failures = 0

    # ------------------------------------------------------------------ sending
    async def ask(self, entity_id: str, message: Any) -> Any:
        """Send ``message`` and wait for the reply (or the error it raised).

        An idle entity is served in the caller's own task -- no task created, no hand-over
        from task to task -- and what arrives for it meanwhile is served by a task of its own
        afterwards. A caller cancelled in the middle leaves the entity to reload its state
        (the command may or may not have been stored)."""
        loop = self._loop
        if loop is None or not loop.is_running():  # not asking the OS each time (3.11 does)
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        activation = self._post(entity_id, _Envelope(message, future), start=False)
        if not activation.running:
            activation.running = True
            task = asyncio.current_task(loop)
            assert task is not None
            self._serving.add(task)
            try:
                await self._drain(activation, until=future)
            except asyncio.CancelledError:
                if task not in self._stopping:
                    raise  # the caller itself was cancelled
                task.uncancel()  # cancelled by stop(), not by its caller: answer as stopped
                raise ActorStopped(f"{entity_id!r} stopped") from None
            finally:
                self._serving.discard(task)
        return await future

    def tell(self, entity_id: str, message: Any) -> None:
        """Send ``message`` without waiting; errors are counted, not returned."""
        self._post(entity_id, _Envelope(message, None))

    def _post(self, entity_id: str, envelope: _Envelope, *, start: bool = True
              ) -> _Activation[S]:
        if self._stopped:
            raise ActorStopped(f"host stopped; {entity_id!r} takes no messages")
        activation = self._active.get(entity_id)
        if activation is None:
            activation = self._active[entity_id] = _Activation(entity_id)
            self._activations += 1
        mailbox = activation.mailbox
        if len(mailbox) >= self.mailbox_limit:
            raise Overloaded(f"mailbox of {entity_id!r} is full ({self.mailbox_limit})")
        if isinstance(mailbox, tuple):
            mailbox = activation.mailbox = deque()
        mailbox.append(envelope)
        if start and not activation.running:
            self._start_worker(activation)
        return activation

    def _start_worker(self, activation: _Activation[S]) -> None:
        activation.running = True
        task = asyncio.get_running_loop().create_task(self._drain(activation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the one worker
    async def _drain(self, activation: _Activation[S],
                     until: asyncio.Future[Any] | None = None) -> None:
        """Serve the mailbox in order (with ``until``: until that request is answered)."""
        entity_id = activation.entity_id
        try:
            while activation.mailbox and (until is None or not until.done()):
                if not activation.loaded:
                    presume = getattr(self._behaviour, "presume", None)
                    presumed = presume(entity_id, activation.mailbox[0].message) if presume else None
                    try:
                        activation.state = (presumed if presumed is not None
                                            else await self._behaviour.load(entity_id))
                        activation.loaded = True
                    except Exception as exc:  # the store failed: every waiting request learns
                        self._fail_all(activation, exc)
                        self._active.pop(entity_id, None)
                        return
                envelope = _take(activation)
                self._messages += 1
                try:
                    activation.state, reply = await self._behaviour.receive(
                        entity_id, activation.state, envelope.message)
                except asyncio.CancelledError:
                    # The host stopping, or the caller serving its own request cancelled: the
                    # command may or may not have been stored. The next message reloads.
                    activation.loaded = False
                    if until is not None and envelope.reply is until:
                        until.cancel()
                    elif envelope.reply is not None and not envelope.reply.done():
                        envelope.reply.set_exception(ActorStopped(f"{entity_id!r} stopped"))
                    raise
                except Exception as exc:
                    self._failures += 1
                    if not isinstance(exc, CallerError):
                        # Not a refusal: the store failed or moved on, and a write may have
                        # landed unanswered. The next message reloads from the store.
                        activation.loaded = False
                    if envelope.reply is not None and not envelope.reply.done():
                        envelope.reply.set_exception(exc)
                else:
                    if envelope.reply is not None and not envelope.reply.done():
                        envelope.reply.set_result(reply)
                activation.last_active_s = self._clock()
            if not activation.loaded or self._behaviour.finished(activation.state):
                # Nothing worth keeping: the state reloads from the store (a refused open of
                # a ticket that does not exist leaves nothing behind), or the entity is done.
                self._passivate(activation)
        finally:
            activation.running = False
            if activation.mailbox and not self._stopped and entity_id in self._active:
                # Someone posted while the last reply was being delivered: keep going.
                self._start_worker(activation)

    def _fail_all(self, activation: _Activation[S], exc: BaseException) -> None:
        while activation.mailbox:
            envelope = _take(activation)
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(exc)

    def _passivate(self, activation: _Activation[S]) -> None:
        if self._active.get(activation.entity_id) is activation and not activation.mailbox:
            del self._active[activation.entity_id]
            self._passivations += 1

    # ------------------------------------------------------------------ housekeeping
    def passivate_idle(self) -> int:
        """Drop entities idle for ``idle_after_s`` with empty mailboxes. O(active)."""
        cutoff = self._clock() - self.idle_after_s
        idle = [a for a in self._active.values()
                if not a.running and not a.mailbox and a.loaded and a.last_active_s <= cutoff]
        for activation in idle:
            self._passivate(activation)
        return len(idle)

    def is_active(self, entity_id: str) -> bool:
        return entity_id in self._active

    async def stop(self) -> None:
        """Stop taking messages; fail every request still waiting with ActorStopped."""
        self._stopped = True
        for activation in list(self._active.values()):
            self._fail_all(activation, ActorStopped(f"{activation.entity_id!r} stopped"))
        self._stopping = set(self._serving)
        for caller in self._stopping:
            caller.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for activation in list(self._active.values()):
            self._fail_all(activation, ActorStopped(f"{activation.entity_id!r} stopped"))
        self._active.clear()

    def statistics(self) -> HostStatistics:
        return HostStatistics(
            active=len(self._active),
            running=sum(1 for a in self._active.values() if a.running),
            waiting_messages=sum(len(a.mailbox) for a in self._active.values()),
            messages_total=self._messages,
            activations_total=self._activations,
            passivations_total=self._passivations,
            failures_total=self._failures,
        )
