"""Watching: a ticket's or an agent's events, from a cursor, then live.

Who runs this: every gateway, on its event loop, for WatchTicket and WatchAssignments. Live
events come through the gateway's one reader of the journal's feed
(:mod:`surgedesk.adapters.redis.stream_hub`); every ticket event reaches the streams of those
concerned in the same atomic step as its journal entry
(:mod:`surgedesk.adapters.redis.ticket_actor`), so a watch resumed from its last cursor, on any
gateway, misses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from surgedesk.adapters.redis.journal import (
    JournalEntry,
    TicketJournal,
    agent_stream,
    decode,
    stream_key,
)
from surgedesk.adapters.redis.stream_hub import StreamHub
from surgedesk.engine.ticket import (
    Event,
)


class Watching:
    """The gateway's watches of ticket and agent streams."""

    def __init__(self, client: aioredis.Redis, journal: TicketJournal | None = None) -> None:
        self.hub = StreamHub(client)  # the watchers' one reader of Redis streams
        self._redis: Any = client
        self._journal = journal  # where an archived ticket's events are read

    async def close(self) -> None:
        """Stop the watchers' reader (the watches themselves end with the server)."""
        await self.hub.close()

    async def watch_ticket(self, ticket_id: str, cursor: str = "", block_ms: int = 1000,
                           *, idle: bool = False) -> AsyncIterator[JournalEntry | None]:
        """Every event after ``cursor``, then live ones, until the consumer stops. With
        ``idle``, ``None`` after each ``block_ms`` that brought nothing (time to look around).
        Live events come through the gateway's one reader of the journal's feed
        (:mod:`surgedesk.adapters.redis.stream_hub`)."""
        if self._journal is not None and self._journal.archive is not None and not (
                await self._redis.exists(stream_key(ticket_id))):
            archived = await self._journal.archived(ticket_id, cursor)
            if archived:  # an ended ticket moved to the archive: its history, and no more
                for entry in archived:
                    yield entry
                while True:
                    await asyncio.sleep(block_ms / 1000)
                    if idle:
                        yield None
        sub = await self.hub.subscribe(stream_key(ticket_id), cursor)
        try:
            while True:
                rows = await sub.next(block_ms / 1000 if idle else None)
                if not rows:
                    yield None
                for entry_id, fields in rows:
                    yield JournalEntry(entry_id, decode(fields[b"e"]))
        finally:
            sub.close()

    async def watch_agent(self, agent_id: str, cursor: str = ""
                          ) -> AsyncIterator[tuple[str, str, Event]]:
        """``(cursor, ticket_id, event)`` for every event of the agent's tickets after
        ``cursor``, then live ones: assignments, offers, transfers, messages, alarms."""
        sub = await self.hub.subscribe(agent_stream(agent_id), cursor)
        try:
            while True:
                for entry_id, fields in await sub.next():
                    yield entry_id, fields[b"t"].decode(), decode(fields[b"e"])
        finally:
            sub.close()
