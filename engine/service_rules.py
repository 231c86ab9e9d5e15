"""The thresholds of the service process: every timer of a ticket's life, as configuration.

Who reads this: ticket actors (to know when a ticket's next timer is due,
:mod:`surgedesk.engine.ticket`), the desk (offers, wrap-up, work orders), the simulator, and
``surgedesk serve``'s config file (section ``[service]``). A threshold of 0 switches its rule off.

| field | rule (docs/DESIGN.md, "The ticket's life") |
|---|---|
| ``slow_reply_alarm_s`` | AWAITING_AGENT this long: alarm to the agent and the supervisors |
| ``slow_reply_reroute_s`` | AWAITING_AGENT this long: the ticket goes back to its line |
| ``silence_reminder_s`` | AWAITING_CUSTOMER this long: the customer is reminded |
| ``silence_close_s`` | AWAITING_CUSTOMER this long: SYSTEM_CLOSED (silent) |
| ``confirmation_timeout_s`` | AWAITING_CONFIRMATION this long: CLOSED by timeout |
| ``queue_wait_cap_s`` | QUEUED this long: SYSTEM_CLOSED (abandoned) |
| ``queue_target_s`` | a customer whose estimate (or wait) passes it gets a queue warning |
| ``offer_timeout_s`` | > 0: offer mode -- an agent accepts or declines within it |
| ``offer_misses_to_away`` | consecutive missed offers that set an agent away |
| ``offer_pause_s`` | after a decline or a miss the agent gets no offer for this long |
| ``wrap_up_s`` | after a conversation ends its slot stays busy this long |
| ``work_order_sla_s`` | SLA by work-order priority: high 2 h, medium 4 h, low 8 h |
| ``supervisors`` | agent ids who receive every slow-reply alarm on their watch stream |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from surgedesk.engine.errors import InvalidArgument

WORK_ORDER_PRIORITIES = ("high", "medium", "low")
_DEFAULT_SLA = {"high": 2 * 3600.0, "medium": 4 * 3600.0, "low": 8 * 3600.0}


@dataclass(frozen=True)
class ServiceRules:
    slow_reply_alarm_s: float = 120.0
    slow_reply_reroute_s: float = 0.0
    silence_reminder_s: float = 300.0
    silence_close_s: float = 600.0
    confirmation_timeout_s: float = 300.0
    queue_wait_cap_s: float = 1800.0
    queue_target_s: float = 180.0
    offer_timeout_s: float = 0.0
    offer_misses_to_away: int = 3
    offer_pause_s: float = 10.0
    wrap_up_s: float = 0.0
    work_order_sla_s: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_SLA))
    supervisors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            seconds = f.name.endswith("_s") and f.name != "work_order_sla_s"
            if seconds and (isinstance(value, bool) or not isinstance(value, int | float)
                            or not (math.isfinite(value) and value >= 0)):
                raise InvalidArgument(f.name, "must be a finite number of seconds >= 0")
        if isinstance(self.offer_misses_to_away, bool) or not isinstance(
                self.offer_misses_to_away, int) or self.offer_misses_to_away < 0:
            raise InvalidArgument("offer_misses_to_away", "must be an integer >= 0")
        if set(self.work_order_sla_s) != set(WORK_ORDER_PRIORITIES):
            raise InvalidArgument("work_order_sla_s", "must give high, medium and low")
        for name, value in self.work_order_sla_s.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidArgument(f"work_order_sla_s.{name}", "must be seconds > 0")
        if self.silence_reminder_s and self.silence_close_s and (
                self.silence_close_s <= self.silence_reminder_s):
            raise InvalidArgument("silence_close_s", "must be longer than silence_reminder_s")
        if self.slow_reply_alarm_s and self.slow_reply_reroute_s and (
                self.slow_reply_reroute_s <= self.slow_reply_alarm_s):
            raise InvalidArgument("slow_reply_reroute_s", "must be longer than slow_reply_alarm_s")
        if not all(isinstance(s, str) and s for s in self.supervisors):
            raise InvalidArgument("supervisors", "must be agent ids")

    @property
    def offers(self) -> bool:
        """Offer mode (accept or decline) rather than direct assignment."""
        return self.offer_timeout_s > 0

    def sla_s(self, priority: str) -> float:
        try:
            return float(self.work_order_sla_s[priority])
        except KeyError:
            raise InvalidArgument("priority", "must be high, medium or low") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "service") -> ServiceRules:
        """Rules from a config table; an unknown key is named in the error."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise InvalidArgument(f"{where}.{key}", "unknown key; expected one of "
                                      + ", ".join(sorted(known)))
            values[key] = value
        if "work_order_sla_s" in values:
            values["work_order_sla_s"] = {**_DEFAULT_SLA, **dict(values["work_order_sla_s"])}
        if "supervisors" in values:
            values["supervisors"] = tuple(values["supervisors"])
        try:
            return cls(**values)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}.{exc.field}", exc.problem) from None
