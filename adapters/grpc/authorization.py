"""Who may do what: the caller of each RPC, from its bearer token, and the rules per role.

| RPC | customer | service | agent | admin |
|---|---|---|---|---|
| StartConversation | as itself | for the named ``customer_id`` | -- | -- |
| GetHistory | its own | the named ``customer_id`` | -- | any |
| GetQueueStatus, WatchTicket | its tickets | see below | assigned, offered, shared | any |
| SendMessage, ConfirmResolution, LeaveQueue, Rate | its tickets | see below | -- | -- |
| AgentService | -- | -- | as itself (``agent_id`` = subject) | -- |
| AdminService | -- | -- | -- | yes |

A ``service`` token is a trusted frontend that has authenticated its own user. It names the
customer it acts for in the ``x-on-behalf-of`` metadata; then it reaches only that customer's
tickets, and StartConversation's ``customer_id`` must be that customer. Without the metadata it
acts for the customer the request or the ticket names. Health and reflection need no token.
What a call may do *inside* a ticket (an agent closing a ticket another agent holds, a customer
writing to someone else's ticket) is checked once more by the ticket core itself.

Missing, malformed, forged or expired tokens are UNAUTHENTICATED; a known caller reaching
beyond its rights is PERMISSION_DENIED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from surgedesk.adapters.grpc.limits import Admission, Limits, RateLimiter
from surgedesk.adapters.identity.tokens import TokenVerifier
from surgedesk.engine.errors import InvalidArgument, PermissionDenied, RateLimited, Unauthenticated
from surgedesk.engine.identifiers import check_id
from surgedesk.engine.ticket import TicketRecord

ON_BEHALF_OF = "x-on-behalf-of"


@dataclass(frozen=True)
class Caller:
    role: str
    subject: str
    on_behalf_of: str = ""

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise PermissionDenied(f"a {self.role} token may not call this; it needs "
                                   f"{' or '.join(roles)}")

    def customer_named(self, customer_id: str, *, reading: bool = False) -> str:
        """The customer a StartConversation or GetHistory acts for, named by the request."""
        if self.role == "customer":
            if customer_id and customer_id != self.subject:
                raise PermissionDenied(f"customer {self.subject!r} may not act as "
                                       f"{customer_id!r}")
            return self.subject
        self.require("service", "admin") if reading else self.require("service")
        if not customer_id:
            raise InvalidArgument("customer_id", f"must name the customer a {self.role} acts for")
        if self.on_behalf_of and customer_id != self.on_behalf_of:
            raise PermissionDenied(f"this call acts on behalf of {self.on_behalf_of!r}, "
                                   f"not {customer_id!r}")
        return customer_id

    def customer_of(self, record: TicketRecord) -> str:
        """The customer a write to ``record`` acts for; refused unless it is the ticket's."""
        self.require("customer", "service")
        acting = self.subject if self.role == "customer" else (
            self.on_behalf_of or record.customer_id)
        if acting != record.customer_id:
            raise PermissionDenied(f"ticket {record.ticket_id} belongs to another customer")
        return acting

    def check_read(self, record: TicketRecord) -> None:
        """May this caller see ``record``? Raises PermissionDenied if not."""
        if self.role == "admin":
            return
        if self.role == "agent":
            if record.may_write(self.subject) or record.offered_to == self.subject:
                return
            raise PermissionDenied(f"ticket {record.ticket_id} is not assigned to, offered "
                                   f"to or shared with {self.subject!r}")
        self.customer_of(record)

    def agent_named(self, agent_id: str) -> str:
        """The acting agent: the token's subject; a request naming another agent is refused."""
        self.require("agent")
        if agent_id and agent_id != self.subject:
            raise PermissionDenied(f"agent {self.subject!r} may not act as {agent_id!r}")
        return self.subject


class Gate:
    """Authentication, rate limits and admission for every RPC of the gateway.

    Per call: a dict lookup for a known token (an HMAC for a new one) and two O(1) bucket
    updates.
    """

    def __init__(self, verifier: TokenVerifier, limits: Limits | None = None, *,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.verifier = verifier
        self.limits = limits = limits or Limits()
        self.wall, self.monotonic = wall, monotonic
        self.admission = Admission(limits.max_inflight, limits.max_streams)
        self._per_token = RateLimiter(limits.per_token_per_s, limits.per_token_burst,
                                      limits.tracked_keys)
        self._per_service = RateLimiter(limits.per_service_token_per_s,
                                        limits.per_service_token_burst, limits.tracked_keys)
        self._per_customer = RateLimiter(limits.per_customer_per_s, limits.per_customer_burst,
                                         limits.tracked_keys)

    def caller(self, metadata: Any) -> Caller:
        token, on_behalf = "", ""
        for key, value in metadata or ():
            if key == "authorization" and not token:
                token = value if isinstance(value, str) else ""
            elif key == ON_BEHALF_OF and not on_behalf:
                on_behalf = value if isinstance(value, str) else ""
        if not token:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata "
                                  "(surgedesk token --role ... --subject ... mints one)")
        scheme, _, credential = token.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        claims = self.verifier.verify(credential.strip(), self.wall())
        if on_behalf:
            if claims.role != "service":
                raise PermissionDenied(f"only a service token may act on behalf of a customer "
                                       f"({ON_BEHALF_OF}); this is a {claims.role} token")
            check_id(ON_BEHALF_OF, on_behalf)
        limiter = self._per_service if claims.role == "service" else self._per_token
        self._limit(limiter, f"{claims.role}\0{claims.subject}", "this token")
        caller = Caller(claims.role, claims.subject, on_behalf)
        if caller.role == "customer":
            self._customer(caller.subject)
        return caller

    def count_for(self, caller: Caller, customer_id: str) -> None:
        """Count one call for ``customer_id``, made by a service or admin on its behalf (a
        customer's own calls were counted by :meth:`caller`)."""
        if caller.role != "customer":
            self._customer(customer_id)

    def _customer(self, customer_id: str) -> None:
        self._limit(self._per_customer, customer_id, f"customer {customer_id!r}")

    def _limit(self, limiter: RateLimiter, key: str, who: str) -> None:
        wait = limiter.wait_s(key, self.monotonic())
        if wait > 0:
            raise RateLimited(f"rate limit: {who} is over {limiter.rate:g} calls/s; "
                              f"retry in {wait:.2f} s", retry_after_s=wait)
