"""The archive: ended tickets' journals in a relational database, event for event.

Who runs this: every gateway -- the archiver (:mod:`surgedesk.adapters.archive.archiver`)
writes, and reads of a ticket no longer in Redis (GetHistory, continuity, a watch of an old
ticket) come here through :class:`~surgedesk.adapters.redis.journal.TicketJournal`.

The database is SQLite in the data directory by default (``sqlite:///DATA_DIR/archive.db``,
in WAL mode) or whatever ``SURGEDESK_ARCHIVE_URL`` names (``postgresql+psycopg://...``). The
code is SQLAlchemy Core, one dialect-neutral description of the tables, and the schema is
versioned by Alembic migrations (``adapters/archive/migrations``), applied at start.

Two tables: ``archived_tickets`` (one row per ticket: customer, when it ended, how many events)
and ``archived_events`` (one row per event: the ticket, its position, its cursor -- the Redis
stream id it had -- and the event's msgpack bytes, unchanged). A ticket's history read back is
byte for byte what its stream held. Writes are idempotent: rows that exist are left as they are
(``ON CONFLICT DO NOTHING``), so a batch written twice (an archiver killed between the write and
Redis's release) changes nothing, and a ticket whose stream grew after a first write gets its
new events added.

The driver calls block, so the async methods run them on a worker thread: the gateway's event
loop never waits on the database. Costs: a batch write is one transaction, O(events); a
ticket's read is one indexed range scan, O(its events); a customer's tickets, O(page).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

ENV_VAR = "SURGEDESK_ARCHIVE_URL"
metadata = sa.MetaData()
archived_tickets = sa.Table(
    "archived_tickets", metadata,
    sa.Column("ticket_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=False, index=True),
    sa.Column("ended_at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Column("archived_at", sa.Float, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
)
# a customer's tickets in the order they ended (migration 0003): continuity and history pages
sa.Index("ix_archived_tickets_customer_ended", archived_tickets.c.customer_id,
         archived_tickets.c.ended_at, archived_tickets.c.ticket_id)
archived_events = sa.Table(
    "archived_events", metadata,
    sa.Column("ticket_id", sa.String(128), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),  # 0, 1, ... in the stream's order
    sa.Column("cursor", sa.String(64), nullable=False),  # the Redis stream id it had
    sa.Column("payload", sa.LargeBinary, nullable=False),  # the event, msgpack, unchanged
)


audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit log."""

    audit_id: str
    at_s: float
    actor: str
    action: str
    subject: str
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ArchivedTicket:
    """One ticket's journal as the archiver moves it: its events as ``(cursor, payload)``."""

    ticket_id: str
    customer_id: str
    ended_s: float
    events: tuple[tuple[str, bytes], ...]


def archive_url(data_dir: str | Path, url: str | None = None) -> str:
    """The archive's database: ``url``, else ``SURGEDESK_ARCHIVE_URL``, else SQLite in the
    data directory."""
    chosen = url or os.environ.get(ENV_VAR)
    if chosen:
        return chosen
    path = Path(data_dir).resolve() / "archive.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


_MIGRATION_LOCK = 0x5D_A4C1  # PostgreSQL advisory lock: one gateway migrates at a time


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent). Gateways starting
    together take turns: an advisory lock on PostgreSQL, a file lock beside a SQLite file."""
    with _migration_lock(engine):
        _upgrade(engine)


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("surgedesk.adapters.archive") / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Held while this process migrates a SQLite file (``flock`` on ``<file>.migrate``);
    nothing for other databases, which lock inside the migration's transaction."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _insert(engine: Engine, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the engine's dialect."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(table).on_conflict_do_nothing()
    raise ValueError(f"the archive supports SQLite and PostgreSQL, not {engine.dialect.name}")


def open_archive(url: str, attempts: int = 5) -> ArchiveStore:
    """The archive at ``url``, its schema migrated. A database that cannot be reached or
    opened is said at once; one busy (SQLite locked by another process), or a migration that
    fails (another process's, not taking turns: an older surgedesk), is tried again,
    ``attempts`` times in all. The first connection is made holding the migration's turn, so
    gateways starting together do not race to put a new SQLite file into WAL mode."""
    engine = _engine(url)
    try:
        for attempt in range(1, attempts + 1):
            try:
                with _migration_lock(engine):
                    with engine.connect() as conn:  # reachable? opened?
                        conn.execute(sa.text("SELECT 1"))
                    _upgrade(engine)
                return ArchiveStore(url, engine)
            except sa.exc.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or attempt == attempts:
                    raise  # cannot be reached or opened: say so at once
                time.sleep(0.2 * attempt)
            except sa.exc.SQLAlchemyError:
                if attempt == attempts:
                    raise
                time.sleep(0.2 * attempt)
    except BaseException:
        engine.dispose()
        raise
    raise AssertionError("unreachable")


class ArchiveStore:
    """The archive's tables, behind async methods (each a transaction on a worker thread)."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        """The archive at ``url`` (``engine``: one made for it, its schema migrated; without
        it, one is made and migrated here)."""
        self.url = url
        if engine is None:
            engine = _engine(url)
            migrate(engine)
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    # -------------------------------------------------------------- writes
    def write_now(self, tickets: Sequence[ArchivedTicket], now_s: float) -> dict[str, int]:
        """Write ``tickets`` in one transaction; return each one's event count as stored
        (what the archiver checks before it releases Redis)."""
        if not tickets:
            return {}
        with self.engine.begin() as conn:
            conn.execute(_insert(self.engine, archived_events), [
                {"ticket_id": t.ticket_id, "seq": i, "cursor": cursor, "payload": payload}
                for t in tickets for i, (cursor, payload) in enumerate(t.events)])
            conn.execute(_insert(self.engine, archived_tickets), [
                {"ticket_id": t.ticket_id, "customer_id": t.customer_id, "ended_at": t.ended_s,
                 "archived_at": now_s, "events": len(t.events)} for t in tickets])
            for t in tickets:  # a ticket archived again with more events: keep the count true
                conn.execute(archived_tickets.update()
                             .where(archived_tickets.c.ticket_id == t.ticket_id)
                             .where(archived_tickets.c.events < len(t.events))
                             .values(events=len(t.events), archived_at=now_s))
            return self._counts(conn, [t.ticket_id for t in tickets])

    @staticmethod
    def _counts(conn: Any, ticket_ids: Iterable[str]) -> dict[str, int]:
        ids = list(ticket_ids)
        rows = conn.execute(
            sa.select(archived_events.c.ticket_id, sa.func.count())
            .where(archived_events.c.ticket_id.in_(ids))
            .group_by(archived_events.c.ticket_id)).all()
        found = {row[0]: int(row[1]) for row in rows}
        return {t: found.get(t, 0) for t in ids}

    def counts_now(self, ticket_ids: Sequence[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            return self._counts(conn, ticket_ids)

    def erase_customer_now(self, customer_id: str) -> list[str]:
        """Delete every archived ticket of ``customer_id``; the ticket ids deleted."""
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.customer_id == customer_id)).all()]
            if ids:
                conn.execute(archived_events.delete()
                             .where(archived_events.c.ticket_id.in_(ids)))
                conn.execute(archived_tickets.delete()
                             .where(archived_tickets.c.ticket_id.in_(ids)))
            return ids

    def audit_now(self, at_s: float, actor: str, action: str, subject: str, reason: str,
                  detail: str = "") -> AuditEntry:
        """Record an entry in the audit log; the entry with its id."""
        with self.engine.begin() as conn:
            result = conn.execute(audit_log.insert().values(
                at=at_s, actor=actor, action=action, subject=subject, reason=reason,
                detail=detail))
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row names its key
            audit_id = str(key[0])
        return AuditEntry(audit_id, at_s, actor, action, subject, reason, detail)

    def audit_of_now(self, subject: str) -> list[AuditEntry]:
        """The audit log's entries about ``subject``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).where(audit_log.c.subject == subject)
                                .order_by(audit_log.c.audit_id)).all()
        return [AuditEntry(str(r.audit_id), r.at, r.actor, r.action, r.subject, r.reason,
                           r.detail) for r in rows]

    def expire_now(self, ended_before_s: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` archived tickets that ended before ``ended_before_s`` (the
        retention of conversations); how many were deleted."""
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.ended_at < ended_before_s).limit(limit)).all()]
            if ids:
                conn.execute(archived_events.delete()
                             .where(archived_events.c.ticket_id.in_(ids)))
                conn.execute(archived_tickets.delete()
                             .where(archived_tickets.c.ticket_id.in_(ids)))
            return len(ids)

    def expire_audit_now(self, before_s: float) -> int:
        """Delete audit entries older than ``before_s`` (the audit log's retention)."""
        with self.engine.begin() as conn:
            return int(conn.execute(audit_log.delete().where(audit_log.c.at < before_s))
                       .rowcount or 0)

    async def expire_audit(self, before_s: float) -> int:
        return await asyncio.to_thread(self.expire_audit_now, before_s)

    # -------------------------------------------------------------- reads
    def load_now(self, ticket_id: str) -> list[tuple[str, bytes]] | None:
        """The ticket's events in order, or None if it is not archived."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(archived_events.c.cursor, archived_events.c.payload)
                .where(archived_events.c.ticket_id == ticket_id)
                .order_by(archived_events.c.seq)).all()
        return [(r[0], bytes(r[1])) for r in rows] if rows else None

    def latest_of_now(self, customer_id: str, ticket_id: str = "") -> tuple[str, bool]:
        """The customer's latest archived ticket ("" for none) and whether ``ticket_id`` is
        archived (a keyed start retried after its ticket left Redis). Two index lookups."""
        with self.engine.connect() as conn:
            latest = conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.customer_id == customer_id)
                .order_by(archived_tickets.c.ended_at.desc(), archived_tickets.c.ticket_id.desc())
                .limit(1)).scalar_one_or_none()
            known = ticket_id != "" and conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.ticket_id == ticket_id)).first() is not None
        return latest or "", known

    def customer_count_now(self, customer_id: str) -> int:
        """How many tickets of the customer the archive holds. One index count."""
        with self.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(archived_tickets)
                .where(archived_tickets.c.customer_id == customer_id)).scalar_one())

    def customer_page_now(self, customer_id: str, offset: int, limit: int) -> list[str]:
        """``limit`` ids of the customer's archived tickets from position ``offset``, in the
        order they ended (oldest first). One index range scan: O(offset + limit)."""
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.customer_id == customer_id)
                .order_by(archived_tickets.c.ended_at, archived_tickets.c.ticket_id)
                .offset(offset).limit(limit)).all()]

    def archived_among_now(self, ticket_ids: Sequence[str]) -> set[str]:
        """Which of ``ticket_ids`` the archive holds."""
        if not ticket_ids:
            return set()
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(
                sa.select(archived_tickets.c.ticket_id)
                .where(archived_tickets.c.ticket_id.in_(list(ticket_ids)))).all()}

    async def latest_of(self, customer_id: str, ticket_id: str = "") -> tuple[str, bool]:
        return await asyncio.to_thread(self.latest_of_now, customer_id, ticket_id)

    async def customer_count(self, customer_id: str) -> int:
        return await asyncio.to_thread(self.customer_count_now, customer_id)

    async def customer_page(self, customer_id: str, offset: int, limit: int) -> list[str]:
        return await asyncio.to_thread(self.customer_page_now, customer_id, offset, limit)

    async def archived_among(self, ticket_ids: Sequence[str]) -> set[str]:
        return await asyncio.to_thread(self.archived_among_now, ticket_ids)

    def tickets_now(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count())
                                    .select_from(archived_tickets)).scalar_one())

    async def write(self, tickets: Sequence[ArchivedTicket], now_s: float) -> dict[str, int]:
        return await asyncio.to_thread(self.write_now, tickets, now_s)

    async def counts(self, ticket_ids: Sequence[str]) -> dict[str, int]:
        return await asyncio.to_thread(self.counts_now, ticket_ids)

    async def load(self, ticket_id: str) -> list[tuple[str, bytes]] | None:
        return await asyncio.to_thread(self.load_now, ticket_id)

    async def erase_customer(self, customer_id: str) -> list[str]:
        return await asyncio.to_thread(self.erase_customer_now, customer_id)

    async def audit(self, at_s: float, actor: str, action: str, subject: str, reason: str,
                    detail: str = "") -> AuditEntry:
        return await asyncio.to_thread(self.audit_now, at_s, actor, action, subject, reason,
                                       detail)

    async def expire(self, ended_before_s: float, limit: int = 1000) -> int:
        return await asyncio.to_thread(self.expire_now, ended_before_s, limit)
