"""The engine's clock: wall time, or wall time run K times faster for surge rehearsals.

Every time-dependent decision of the engine (queue waits, relaxation steps, sticky windows,
estimates, service timers) reads this clock, never ``time.time`` directly, so ``surgedesk serve
--time-scale 60`` behaves in one real second as the production desk does in a minute: the same
desk file, the same policy, sixty times faster. It is for rehearsals (``surgedesk surge``), not
production: a desk's journal written at one scale is not meant to be served at another.

The clock is stateless and the same in every process: engine time is
``ORIGIN_S + (wall - ORIGIN_S) * scale``, so the gateway and every Ray actor agree, and a
restarted engine at the same scale carries on where it was (it never runs backwards).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from surgedesk.engine.errors import InvalidArgument

ORIGIN_S = 1_700_000_000.0  # 2023-11-14: keeps scaled times well inside protobuf's range


@dataclass(frozen=True, slots=True)
class EngineClock:
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and 1.0 <= self.scale <= 1000.0):
            raise InvalidArgument("time-scale", "must be a number in 1..1000")

    def __call__(self) -> float:
        now = time.time()
        if self.scale == 1.0:
            return now
        return ORIGIN_S + (now - ORIGIN_S) * self.scale

    def engine_seconds(self, wall_seconds: float) -> float:
        """A wall-clock duration in engine seconds."""
        return wall_seconds * self.scale

    def wall_seconds(self, engine_seconds: float) -> float:
        """An engine duration in wall-clock seconds."""
        return engine_seconds / self.scale


WALL_CLOCK = EngineClock()
