"""Routing as a use case: which account a sender's message goes through, and why."""

from __future__ import annotations

import sqlalchemy as sa

from postroom.domain.people import Actor
from postroom.domain.routing import RouteDecision, Sender, decide_route
from postroom.errors import Forbidden
from postroom.storage.outbox import OutboxRepository


class RoutingService:
    def __init__(self, engine: sa.Engine, repo: OutboxRepository) -> None:
        self._engine = engine
        self._repo = repo

    def explain(
        self, actor: Actor, account_id: int | None = None, sender_user_id: int | None = None
    ) -> RouteDecision:
        """The decision for `sender_user_id` (default: the actor) with each step's reason.

        Only admins may ask on behalf of someone else.
        """
        if sender_user_id is not None and sender_user_id != actor.user_id and not actor.is_admin:
            raise Forbidden("only admins can explain routing for another user")
        with self._engine.begin() as conn:
            return self.decide(conn, actor, account_id, sender_user_id or actor.user_id)

    def decide(
        self, conn: sa.Connection, actor: Actor, account_id: int | None, user_id: int | None
    ) -> RouteDecision:
        """The decision inside the caller's transaction. Candidates are the accounts the sender
        may use: those the actor can read (their teams' and system-wide ones)."""
        if user_id is None:  # the system itself (worker, scheduler): system default only
            sender, reader = Sender(None, actor.email), actor
        else:
            sender, reader = self._repo.sender(conn, user_id)
        candidates = [c for c in self._repo.route_candidates(conn) if reader.can_read(c.team_id)]
        return decide_route(sender, candidates, account_id)
