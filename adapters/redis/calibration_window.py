"""The desk's own measure of how honest its wait estimates are, kept in Redis.

Who runs this: every gateway, on its event loop -- the conversation flows record what they
show and what became of it; the metrics collector reads the windows.

* :meth:`CalibrationWindow.shown` -- a customer queued and was shown a median and a
  90th-percentile wait: ``sd:calibration:shown:{ticket}`` holds them for a day (``SET EX``).
* :meth:`CalibrationWindow.ended` -- the ticket left the line: served (its wait is the virtual
  wait V) or gone unserved (left, timed out, closed: V is only known to exceed the time it
  waited). One script takes the shown estimate (``GETDEL``) and pushes ``"wait p50 p90 1|0"``
  onto the skill's window ``sd:calibration:{skill}``, the latest :data:`WINDOW` outcomes; a
  ticket shown nothing (served at once, "wait unknown", transferred back into a line) adds
  nothing. Whichever gateway sees the end, the window is the desk's.
* :meth:`CalibrationWindow.coverage` -- for each skill, P(V <= p50) and P(V <= p90) over its
  window, censoring-aware (:func:`surgedesk.engine.calibration.coverage`).

Costs: a ``SET`` per customer shown an estimate, one script per ticket leaving a line; a read
of the windows is O(skills x :data:`WINDOW`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surgedesk.adapters.redis.client import run_script, text
from surgedesk.engine.calibration import coverage

WINDOW = 1000  # outcomes kept per skill: the sliding window the coverage is measured over
SHOWN_TTL_S = 86_400  # a shown estimate whose ticket never leaves its line is forgotten
SKILLS_KEY = "sd:calibration:skills"


def shown_key(ticket_id: str) -> str:
    return f"sd:calibration:shown:{ticket_id}"


def window_key(skill: str) -> str:
    return f"sd:calibration:{skill}"


_ENDED = """
-- KEYS: the ticket's shown estimate, the skill's window, the skills with a window
-- ARGV: wait_s, served (1 or 0), window size, skill
local shown = redis.call('GETDEL', KEYS[1])
if not shown then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1] .. ' ' .. shown .. ' ' .. ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class SkillCoverage:
    """Censoring-aware coverage of the two stated quantiles over a skill's window."""

    p50: float | None
    p90: float | None
    outcomes: int
    unserved: int


class CalibrationWindow:
    def __init__(self, client: Any, window: int = WINDOW) -> None:
        self._redis = client
        self.window = window
        self._script = client.register_script(_ENDED)

    async def forget(self, ticket_id: str) -> None:
        """Drop what the ticket was shown (an erasure)."""
        await self._redis.delete(shown_key(ticket_id))

    async def shown(self, ticket_id: str, p50_s: float, p90_s: float) -> None:
        """The estimate a queued customer was shown (finite values only)."""
        await self._redis.set(shown_key(ticket_id), f"{p50_s!r} {p90_s!r}", ex=SHOWN_TTL_S)

    async def ended(self, ticket_id: str, skill: str, wait_s: float, *, served: bool) -> bool:
        """The ticket left its line after ``wait_s``: served, or not. True if it had been
        shown an estimate (and its outcome joined the skill's window)."""
        keys = [shown_key(ticket_id), window_key(skill), SKILLS_KEY]
        args = [repr(max(0.0, wait_s)), "1" if served else "0", self.window, skill]
        return bool(await run_script(self._redis, self._script, keys, args))

    async def coverage(self) -> dict[str, SkillCoverage]:
        """Every skill with outcomes: its coverage over the window."""
        out: dict[str, SkillCoverage] = {}
        for raw in sorted(await self._redis.smembers(SKILLS_KEY)):
            skill = text(raw)
            rows = []
            for entry in await self._redis.lrange(window_key(skill), 0, -1):
                wait, p50, p90, served = text(entry).split()
                rows.append((float(wait), float(p50), float(p90), served == "1"))
            out[skill] = SkillCoverage(
                coverage((w, p50, s) for w, p50, _, s in rows),
                coverage((w, p90, s) for w, _, p90, s in rows),
                len(rows), sum(1 for *_, s in rows if not s))
        return out
