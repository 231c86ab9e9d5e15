"""The agent actor's behaviour: the aggregate of :mod:`surgedesk.engine.agent`, kept in a journal.

Who runs this: an :class:`surgedesk.engine.actors.ActorHost` in a gateway, next to the tickets.
An agent's journal is the stream ``sd:ag:{id}`` of msgpack events; appends are fenced by the
stream's length like the tickets' (a stale second owner is refused), and the reply comes only
after the events are in Redis. Agents are never "finished": an idle one is passivated and comes
back from its journal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.redis.journal import StaleWriter, decide_fresh
from surgedesk.engine.agent import (
    EVENT_TYPES,
    AgentRecord,
    ChangePresence,
    Event,
    ProfileAgent,
    ReadAgent,
    RecordOffer,
    apply,
    decide,
)
from surgedesk.engine.errors import InvalidArgument, NotFound

_APPEND = """
-- KEYS: journal, presence hash. ARGV: version, agent id, presence ('' unchanged), events...
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE ' .. redis.call('XLEN', KEYS[1]))
end
local ids = {}
for i = 4, #ARGV do
  ids[i - 3] = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return ids
"""
PRESENCE_KEY = "sd:presence"  # hash: agent id -> online | away | offline (for metrics)


def agent_journal_key(agent_id: str) -> str:
    return f"sd:ag:{agent_id}"


def encode(event: Event) -> bytes:
    return msgpack.packb({"type": type(event).__name__, **dataclasses.asdict(event)},
                         use_bin_type=True)


def decode(payload: bytes) -> Event:
    data = msgpack.unpackb(payload, raw=False)
    kind = data.pop("type")
    try:
        return EVENT_TYPES[kind](**data)
    except KeyError:
        raise InvalidArgument("event.type", f"unknown agent event {kind!r}") from None


@dataclass(frozen=True, slots=True)
class AgentActorState:
    record: AgentRecord | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class AgentReply:
    record: AgentRecord
    events: tuple[Event, ...] = ()


class AgentBehaviour:
    def __init__(self, client: aioredis.Redis, clock: Any) -> None:
        self._redis: Any = client
        self._append = client.register_script(_APPEND)
        self._clock = clock

    async def load(self, entity_id: str) -> AgentActorState:
        rows = await self._redis.xrange(agent_journal_key(entity_id))
        record = None
        for _id, fields in rows:
            record = apply(record, decode(fields[b"e"]))
        return AgentActorState(record, len(rows))

    async def receive(self, entity_id: str, state: AgentActorState,
                      message: Any) -> tuple[AgentActorState, AgentReply]:
        """Decide ``message`` and journal the outcome; if another owner wrote first, load the
        agent again and decide again (at most ``DECIDE_ATTEMPTS`` times, as tickets do)."""
        return await decide_fresh(lambda fresh: self._decide(entity_id, fresh, message),
                                  lambda: self.load(entity_id), state)

    async def _decide(self, entity_id: str, state: AgentActorState,
                      message: Any) -> tuple[AgentActorState, AgentReply]:
        if isinstance(message, ReadAgent):
            if state.record is None:
                raise NotFound("agent", entity_id)
            return state, AgentReply(state.record)
        if isinstance(message, ProfileAgent) and message.agent_id != entity_id:
            raise InvalidArgument("agent_id", "does not match the actor it was sent to")
        if isinstance(message, ChangePresence | RecordOffer) and state.record is None:
            raise NotFound("agent", entity_id)
        events = decide(state.record, message, float(self._clock()))
        if not events:
            assert state.record is not None
            return state, AgentReply(state.record)
        record = state.record
        for event in events:
            record = apply(record, event)
        assert record is not None
        presence = record.presence if state.record is None or (
            record.presence != state.record.presence) else ""
        try:
            await self._append(keys=[agent_journal_key(entity_id), PRESENCE_KEY],
                               args=[state.version, entity_id, presence,
                                     *[encode(e) for e in events]])
        except aioredis.ResponseError as exc:
            if str(exc).startswith("STALE"):
                raise StaleWriter(f"agent {entity_id}: journal has moved on ({exc})") from None
            raise
        return AgentActorState(record, state.version + len(events)), AgentReply(record,
                                                                                tuple(events))

    def finished(self, state: AgentActorState) -> bool:
        return False
