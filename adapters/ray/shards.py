"""Shard hosts: Ray actors, each hosting many lightweight ticket actors.

Ray starts one OS process per Ray actor, so a ticket is not a Ray actor: it is an entity of
:class:`surgedesk.engine.actors.ActorHost` inside one of a few :class:`ShardHost` Ray actors (named
``shard-0``, ``shard-1``, ... in namespace ``surgedesk``), chosen by
:func:`surgedesk.engine.sharding.shard_of`. A shard host keeps nothing that is not in Redis: Ray
restarts a killed one (``max_restarts=-1``) and its tickets come back from their journals on their
next message.

:class:`ShardClient` is the gateway's side: concurrent asks for the same shard are coalesced
(:class:`surgedesk.adapters.ray.batching.Coalescer`) into one ``ask_many`` Ray call.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import ray

from surgedesk.adapters.ray.batching import Coalescer
from surgedesk.adapters.redis.agent_actor import AgentBehaviour, AgentReply
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.journal import TicketJournal
from surgedesk.adapters.redis.ticket_actor import TicketBehaviour, TicketReply
from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine.actors import ActorHost
from surgedesk.engine.errors import Recovering, SurgedeskError
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.engine.sharding import shard_of

NAMESPACE = "surgedesk"


def portable(exc: BaseException, where: str) -> SurgedeskError:
    """An error that crosses back to the gateway with a meaning the error table knows."""
    if isinstance(exc, SurgedeskError):
        return exc
    if is_transient(exc):
        return Recovering(f"{where}: storage unavailable ({type(exc).__name__})")
    return SurgedeskError(f"{where}: {type(exc).__name__}: {exc}")


@ray.remote(max_restarts=-1, max_task_retries=-1)
class ShardHost:
    """One shard of ticket actors. Methods run on the actor's asyncio loop."""

    def __init__(self, index: int, redis_url: str, idle_after_s: float = 300.0,
                 mailbox_limit: int = 1000, rules: ServiceRules | None = None,
                 clock: Any = None) -> None:
        self.index = index
        self._clock = clock or time.time
        self._rules = rules or ServiceRules()
        self._redis_url = redis_url
        self._idle_after_s = idle_after_s
        self._mailbox_limit = mailbox_limit
        self._host: ActorHost[Any] | None = None
        self._agents: ActorHost[Any] | None = None

    def _tickets(self) -> ActorHost[Any]:
        # Created on the actor's own event loop, on first use.
        if self._host is None:
            journal = TicketJournal(redis_client(self._redis_url))
            self._host = ActorHost(TicketBehaviour(journal, self._clock, self._rules), clock=time.monotonic,
                                   idle_after_s=self._idle_after_s,
                                   mailbox_limit=self._mailbox_limit)
        return self._host

    def _agent_host(self) -> ActorHost[Any]:
        if self._agents is None:
            self._agents = ActorHost(
                AgentBehaviour(redis_client(self._redis_url), self._clock),
                clock=time.monotonic, idle_after_s=self._idle_after_s,
                mailbox_limit=self._mailbox_limit)
        return self._agents

    async def ask_many(self, items: list[tuple[str, Any]]) -> list[Any]:
        """Deliver each ``(ticket_id, command)``; replies or errors, in the same order."""
        host = self._tickets()
        results = await asyncio.gather(*[host.ask(tid, cmd) for tid, cmd in items],
                                       return_exceptions=True)
        where = f"shard-{self.index}"
        return [portable(r, where) if isinstance(r, BaseException) else r for r in results]

    async def ask_agents_many(self, items: list[tuple[str, Any]]) -> list[Any]:
        """Deliver each ``(agent_id, command)`` to the agent actors of this shard."""
        host = self._agent_host()
        results = await asyncio.gather(*[host.ask(aid, cmd) for aid, cmd in items],
                                       return_exceptions=True)
        where = f"shard-{self.index}"
        return [portable(r, where) if isinstance(r, BaseException) else r for r in results]

    async def passivate_idle(self) -> int:
        return self._tickets().passivate_idle() + self._agent_host().passivate_idle()

    async def statistics(self) -> dict[str, Any]:
        stats = self._tickets().statistics()
        return {"shard": self.index, "node_id": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid(),
                **{k: getattr(stats, k) for k in stats.__slots__}}


def start_shard_hosts(count: int, redis_url: str, rules: ServiceRules | None = None,
                      clock: Any = None, **options: Any) -> list[Any]:
    """Create (or find, after a gateway restart) the named shard hosts.

    A host found running (on a Ray cluster that outlived the gateway) keeps the rules it was
    started with; an embedded engine starts a fresh local Ray, and so fresh hosts, each run."""
    return [
        ShardHost.options(  # type: ignore[attr-defined]  # added by @ray.remote
            name=f"shard-{i}", namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
            **options,
        ).remote(i, redis_url, rules=rules, clock=clock)
        for i in range(count)
    ]


class ShardClient:
    """The gateway's view of the shard hosts: ``await ask(ticket_id, command)``."""

    def __init__(self, hosts: list[Any], batch_max: int = 200) -> None:
        if not hosts:
            raise ValueError("at least one shard host")
        self._hosts = hosts
        self._lanes = [
            Coalescer(self._caller(host.ask_many), batch_max=batch_max, name=f"shard-{i}")
            for i, host in enumerate(hosts)
        ]
        self._agent_lanes = [
            Coalescer(self._caller(host.ask_agents_many), batch_max=batch_max,
                      name=f"shard-{i}")
            for i, host in enumerate(hosts)
        ]

    @staticmethod
    def _caller(method: Any) -> Any:
        async def call(items: list[tuple[str, Any]]) -> list[Any]:
            return await method.remote(items)
        return call

    @property
    def shards(self) -> int:
        return len(self._hosts)

    @property
    def calls(self) -> int:
        return sum(lane.calls for lane in self._lanes)

    async def ask(self, ticket_id: str, command: object) -> TicketReply:
        return await self._lanes[shard_of(ticket_id, len(self._hosts))].submit((ticket_id, command))

    async def ask_agent(self, agent_id: str, command: object) -> AgentReply:
        lane = self._agent_lanes[shard_of(f"agent:{agent_id}", len(self._hosts))]
        return await lane.submit((agent_id, command))
