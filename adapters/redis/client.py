"""A Redis client whose commands travel back to back on one connection.

Who runs this: every engine process (each gateway, the routing-log follower), through
:func:`surgedesk.adapters.redis.connect.redis_client`.

Why: redis-py's own client spends more CPU on each command than Redis does (pool checkout,
retry and telemetry bookkeeping, a ``Pipeline`` object per batch, several awaits; BENCHMARKS.md,
"Figures behind the code's choices"). Redis answers the commands of one connection in the
order it received them, so a client can write every command to one socket as it is issued
and match the replies to their callers in order: encoding is ``hiredis.pack_command`` (C),
parsing is ``hiredis.Reader`` (C), and the commands issued in one turn of the event loop leave
in one ``write`` -- under load, the commands of a few milliseconds (:class:`GroupCommit`).
Cost per command: O(1), a few microseconds.

Semantics are those of separate commands. Each caller gets its own reply or error (a
``ResponseError`` belongs to that command only) through redis-py's own response callbacks,
so every command method of ``redis.asyncio.Redis`` answers as it always did. If the
connection drops, every command on it fails with ``redis.exceptions.ConnectionError`` (each
may or may not have been applied, as for any command whose reply was lost) and the next
command connects again. Commands from one caller keep their order; commands of all callers
run in the order issued.

Not on this connection: blocking commands (``XREAD BLOCK``, ``BLPOP``...), which would hold
up every reply behind them, and transactions (``MULTI``/``EXEC``), which need a connection
of their own. They use redis-py's connection pool as before.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis._parsers.base import BaseParser
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands import AsyncCoreCommands
from redis.utils import DEFAULT_RESP_VERSION

_BLOCKING = {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "BLMPOP",
             "BZMPOP", "WAIT", "SUBSCRIBE", "PSUBSCRIBE", "MONITOR", "MULTI", "EXEC",
             "WATCH", "UNWATCH", "DISCARD"}


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return arg.upper() if isinstance(arg, str) else ""


_NEVER_BLOCK: set[Any] = set()  # command names seen that block with no arguments


def _blocks(args: Sequence[Any]) -> bool:
    if args[0] in _NEVER_BLOCK:
        return False
    name = _word(args[0])
    if name in _BLOCKING:
        return True
    if name in ("XREAD", "XREADGROUP"):
        return any(_word(a) == "BLOCK" for a in args[1:])
    if len(_NEVER_BLOCK) < 1024 and isinstance(args[0], str | bytes):
        _NEVER_BLOCK.add(args[0])
    return False



def text(value: bytes | str) -> str:
    """A reply's bytes as text (the engine's clients never decode replies themselves)."""
    return value.decode() if isinstance(value, bytes) else str(value)


async def run_script(client: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """A registered Lua script, by ``EVALSHA``; a server that does not know it (restarted, or
    another one) is given it once and asked again. EVALSHA directly: redis-py's
    ``Script.__call__`` spends more than the command itself (an isinstance against a typing
    Protocol on every call)."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except redis_errors.NoScriptError:
        script.sha = await client.script_load(script.script)
        return await client.evalsha(script.sha, len(keys), *keys, *args)


_NOT_ENOUGH_DATA = object()


MAX_HELD_COMMANDS = 256  # a held write this long leaves at once


class GroupCommit:
    """When a connection holds its next write for company: group commit, as a database's
    log writer does (PostgreSQL's ``commit_delay``, Kafka's ``linger.ms``).

    Each write to Redis costs both sides a system call and a wake-up whatever it carries, and
    under gRPC load the engine's commands come one per event-loop turn, so that without
    holding every write carries one command (BENCHMARKS.md, "Figures behind the code's
    choices"). A write held ``hold_s`` gathers the commands issued meanwhile. Holding pays
    only under load, and would cost a lone caller ``hold_s`` on every command, so it is
    self-tuning: the connection holds while held writes have gathered at
    least :data:`COMPANY` commands on average (a moving average), and otherwise holds one
    write in :data:`PROBE_EVERY` to find out whether company has come (a lone caller's cost:
    ``hold_s / PROBE_EVERY`` per command on average). A command waits at most ``hold_s`` (or
    until :data:`MAX_HELD_COMMANDS` are waiting). Replies, errors and order are those of
    writes that leave at once. O(1) per write.
    """

    COMPANY = 2.0
    PROBE_EVERY = 32
    WEIGHT = 0.25  # of the latest held write in the average

    __slots__ = ("hold_s", "average", "until_probe", "held", "probes")

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.average = 1.0  # commands per held write: none held yet
        self.until_probe = self.PROBE_EVERY - 1
        self.held = 0  # writes held (tests and benchmarks look)
        self.probes = 0

    def now(self) -> bool:
        """Whether the write starting now is held."""
        if not self.hold_s:
            return False
        if self.average < self.COMPANY:
            if self.until_probe > 0:
                self.until_probe -= 1
                return False
            self.until_probe = self.PROBE_EVERY - 1
            self.probes += 1
        self.held += 1
        return True

    def gathered(self, commands: int) -> None:
        """A held write leaves with ``commands``."""
        self.average += self.WEIGHT * (commands - self.average)


class _Replies(asyncio.Protocol):
    """One socket: commands written back to back, replies parsed as they arrive and handed
    out in order."""

    def __init__(self, hold_s: float = 0.0) -> None:
        self.reader = hiredis.Reader(protocolError=redis_errors.InvalidResponse,
                                     replyError=BaseParser.parse_error,
                                     notEnoughData=_NOT_ENOUGH_DATA)
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.outgoing: list[bytes] = []  # the next write's commands
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self.loop = asyncio.get_running_loop()  # a connection serves the loop that opened it
        self.writes = 0
        self.hold = GroupCommit(hold_s)
        self._timer: asyncio.TimerHandle | None = None  # a held write's

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one command; its reply (or error) comes to the future. O(1)."""
        future: asyncio.Future[Any] = self.loop.create_future()
        if self.lost is not None:
            future.set_exception(self.lost)
            return future
        self.waiting.append(future)
        outgoing = self.outgoing
        if not outgoing:
            if self.hold.now():
                self._timer = self.loop.call_later(self.hold.hold_s, self._flush)
            else:
                self.loop.call_soon(self._flush)
        elif len(outgoing) >= MAX_HELD_COMMANDS and self._timer is not None:
            self._timer.cancel()  # company enough: leave now
            self._timer = None
            self.hold.gathered(len(outgoing))
            self.loop.call_soon(self._flush)
        outgoing.append(packed)
        return future

    def _flush(self) -> None:
        out, self.outgoing = self.outgoing, []
        if self._timer is not None:
            self._timer.cancel()  # a no-op when it is the timer that runs this
            self._timer = None
            self.hold.gathered(len(out))
        if self.transport is None or self.lost is not None or not out:
            return  # their futures have failed already
        self.writes += 1
        self.transport.write(b"".join(out))

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        gets, waiting = self.reader.gets, self.waiting
        while True:
            try:
                reply = gets()
            except redis_errors.InvalidResponse as exc:
                self._broken(exc)
                return
            if reply is _NOT_ENOUGH_DATA:
                return
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._broken(redis_errors.InvalidResponse("unexpected reply from Redis"))
                return
            future = waiting.popleft()
            if future.done():  # its caller was cancelled; the reply was still its own
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis_errors.ConnectionError(
            f"Connection to Redis lost{f': {exc}' if exc else ''}"))

    def _broken(self, exc: BaseException) -> None:
        self._fail(exc)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = exc
        self.outgoing = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class PipelinedConnection:
    """One connection to Redis, opened on first use and again after it drops.

    Runs on the event loop that first uses it. Sending on it is O(1): the command joins the
    next write (this loop turn's, or a held one's), its future joins the reply queue."""

    def __init__(self, connection_kwargs: dict[str, Any], hold_s: float = 0.0) -> None:
        self._kwargs = connection_kwargs
        self.hold_s = hold_s  # the longest a write is held for company (GroupCommit)
        self._replies: _Replies | None = None
        self._connecting: asyncio.Future[_Replies] | None = None

    @property
    def writes(self) -> int:
        """Socket writes on the current connection (tests and benchmarks look)."""
        return 0 if self._replies is None else self._replies.writes

    @property
    def group_commit(self) -> GroupCommit | None:
        """The current connection's group commit (None before the first command)."""
        return None if self._replies is None else self._replies.hold

    def hold_writes(self, hold_s: float) -> None:
        """Hold writes for company up to ``hold_s`` from now on (0: never), this connection
        and the next."""
        self.hold_s = hold_s
        if self._replies is not None:
            self._replies.hold.hold_s = hold_s

    async def connected(self) -> _Replies:
        """The open connection, opening one first if there is none for the running loop."""
        replies = self.current()
        if replies is not None:
            return replies
        if self._replies is not None and self._replies.lost is None:
            self.close()  # opened by an earlier event loop (one asyncio.run after another)
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    def current(self) -> _Replies | None:
        """The open connection, if it serves the running loop; else None (connect first).
        O(1), without a system call: a loop still running is this thread's (a connection
        opened by an earlier ``asyncio.run`` sees its loop closed)."""
        replies = self._replies
        if replies is None or replies.lost is not None or not replies.loop.is_running():
            return None
        return replies

    async def _open(self) -> _Replies:
        loop = asyncio.get_running_loop()
        kw = self._kwargs
        timeout = kw.get("socket_connect_timeout") or 5.0
        hold_s = self.hold_s

        def protocol_factory() -> _Replies:
            return _Replies(hold_s)

        try:
            if kw.get("path"):
                coro = loop.create_unix_connection(protocol_factory, kw["path"])
            else:
                coro = loop.create_connection(protocol_factory, kw.get("host", "localhost"),
                                              int(kw.get("port", 6379)))
            _, replies = await asyncio.wait_for(coro, timeout)
        except (TimeoutError, OSError) as exc:
            raise redis_errors.ConnectionError(f"cannot connect to Redis: {exc}") from None
        # The protocol the client's response callbacks expect: that of its pool's connections.
        protocol = int(kw.get("protocol") or DEFAULT_RESP_VERSION)
        auth = ((kw.get("username") or "default", kw["password"]) if kw.get("password")
                else ())
        setup: list[tuple[Any, ...]] = []
        if protocol >= 3:
            setup.append(("HELLO", protocol, *(("AUTH", *auth) if auth else ())))
        elif auth:
            setup.append(("AUTH", *auth) if kw.get("username") else ("AUTH", auth[1]))
        if int(kw.get("db") or 0):
            setup.append(("SELECT", int(kw["db"])))
        if setup:
            try:
                await asyncio.gather(*(replies.send(hiredis.pack_command(c)) for c in setup))
            except BaseException:
                if replies.transport is not None:
                    replies.transport.close()
                raise
        self._replies = replies
        return replies

    def close(self) -> None:
        replies, self._replies = self._replies, None
        if replies is None or replies.transport is None:
            return
        if replies.loop.is_closed():
            return  # nothing runs there any more; its socket goes with the transport
        replies.transport.close()


class PipelinedRedis(aioredis.Redis):
    """``redis.asyncio.Redis`` whose commands travel back to back on one connection.

    Blocking commands and transactions go through the connection pool; so do pipelines with
    ``transaction=True``. ``pipeline(transaction=False)`` sends its commands on the shared
    connection (they may interleave with other callers' commands, as a non-transactional
    pipeline's may on the server)."""

    def __init__(self, *args: Any, group_commit_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.connection_pool
        # Plain TCP and unix sockets; anything else (TLS: rediss://) keeps redis-py's path.
        plain = pool.connection_class in (aioredis.Connection, aioredis.UnixDomainSocketConnection)
        self.fast: PipelinedConnection | None = (
            PipelinedConnection(dict(pool.connection_kwargs), group_commit_s) if plain else None)

    def pack(self, args: tuple[Any, ...]) -> bytes:
        name = args[0]
        if isinstance(name, str) and " " in name:  # "SCRIPT LOAD": two words on the wire
            args = (*name.split(), *args[1:])
        try:
            return hiredis.pack_command(args)
        except TypeError:
            encode = self.get_encoder().encode  # raises redis-py's DataError, naming the type
            return hiredis.pack_command(tuple(encode(a) for a in args))

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        # The hot path of every engine command: kept flat (one coroutine, one await).
        fast = self.fast
        if fast is None or _blocks(args):
            return await super().execute_command(*args, **options)
        replies = fast.current()
        if replies is None:
            replies = await fast.connected()
        try:
            response = await replies.send(self.pack(args))
        except redis_errors.ResponseError:
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise
        value = self._parsed(args[0], response, options)
        return await value if inspect.isawaitable(value) else value

    def _parsed(self, command_name: Any, response: Any, options: dict[str, Any]) -> Any:
        """The reply as redis-py's callback for the command makes it (or an awaitable)."""
        options.pop(EMPTY_RESPONSE, None)
        options.pop(NEVER_DECODE, None)
        options.pop("keys", None)
        callback = self.response_callbacks.get(command_name)
        if callback is None:
            return response
        return callback(response, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        if transaction or self.fast is None:
            return super().pipeline(transaction=transaction, shard_hint=shard_hint)
        return Batch(self)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self.fast is not None:
            self.fast.close()
        await super().aclose(close_connection_pool)


class Batch(AsyncCoreCommands):
    """A non-transactional pipeline on the shared connection: commands are queued by the
    usual command methods and written together by :meth:`execute`, replies in order."""

    _event_dispatcher: Any = None  # redis-py's command protocol names it; nothing here uses it

    def __init__(self, client: PipelinedRedis) -> None:
        self._client = client
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self._queued.append((args, options))
        return self

    def __len__(self) -> int:
        return len(self._queued)

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._queued = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        queued, self._queued = self._queued, []
        client = self._client
        if any(_blocks(args) for args, _ in queued):
            raise redis_errors.DataError("blocking commands cannot join a pipeline")
        assert client.fast is not None  # a Batch is made only for the shared connection
        replies = client.fast.current() or await client.fast.connected()
        futures = [replies.send(client.pack(args)) for args, _ in queued]
        results: list[Any] = []
        try:
            for (args, options), future in zip(queued, futures, strict=True):
                try:
                    value = client._parsed(args[0], await future, options)
                    results.append(await value if inspect.isawaitable(value) else value)
                except redis_errors.ResponseError as exc:
                    results.append(options.get(EMPTY_RESPONSE, exc))
        except BaseException:
            for future in futures:  # the connection failed them all; one error is enough
                if future.done() and not future.cancelled():
                    future.exception()
            raise
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results
