"""Submitting mail and the journals: validate → route → compose once → store → send or queue.

`submit` is the one entry for the API, the CLI and library callers. Immediate mode stores the
message already leased to the request, then delivers it in the request: if the process dies
mid-send the lease runs out and a worker finishes the job, so nothing is lost either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from postroom.domain.accounts import Account, AccountStatus, AuthMode, SendMode
from postroom.domain.outbox import (
    Draft,
    MessageStatus,
    OutboxMessage,
    OutboxQuery,
    RetryPolicy,
    validate_draft,
)
from postroom.domain.people import Actor
from postroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from postroom.services.accounts import AccountService
from postroom.services.compose import compose
from postroom.services.delivery import DeliveryService
from postroom.services.log import SystemLogService
from postroom.services.pages import Page
from postroom.services.results import DeliveryResult
from postroom.services.routing import RoutingService
from postroom.storage.outbox import OutboxRepository
from postroom.storage.types import utcnow

MAX_BULK = 1000


@dataclass(frozen=True, slots=True)
class Submitted:
    """The stored message; `created` False when an idempotency key returned an earlier one;
    `result` set when it was sent in the request (immediate mode)."""

    message: OutboxMessage
    created: bool
    result: DeliveryResult | None = None


class OutboxService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: OutboxRepository,
        routing: RoutingService,
        accounts: AccountService,
        delivery: DeliveryService,
        log: SystemLogService,
        policy: RetryPolicy,
        lease_s: float,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._routing = routing
        self._accounts = accounts
        self._delivery = delivery
        self._log = log
        self._policy = policy
        self._lease_s = lease_s

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, actor: Actor, draft: Draft) -> Submitted:
        """Store `draft` as a message and, in immediate mode, send it now.

        A repeated idempotency key returns the first message (never a second one); the key is
        the caller's, so another user's key is a Conflict rather than a peek at their message.
        """
        validate_draft(draft)
        if draft.idempotency_key:
            with self._engine.begin() as conn:
                earlier = self._repo.find_by_key(conn, draft.idempotency_key)
            if earlier is not None:
                return Submitted(self._own(actor, earlier), created=False)
        account = self._route(actor, draft)
        mode = draft.mode or account.outgoing.send_mode  # type: ignore[union-attr]
        now = utcnow()
        due = draft.send_after if draft.send_after and draft.send_after > now else None
        immediate = mode is SendMode.IMMEDIATE and due is None and not account.outgoing.paused  # type: ignore[union-attr]
        owner = f"immediate-{uuid.uuid4().hex[:12]}"
        values = self._values(actor, draft, account, mode, now, due)
        if immediate:
            values.update(
                status=MessageStatus.SENDING.value,
                lease_owner=owner,
                attempts=1,
                lease_until=now + timedelta(seconds=self._lease_s),
            )
        earlier = None
        with self._engine.begin() as conn:
            message_id = self._repo.insert(conn, values, draft.recipients())
            if message_id is None:  # lost a race on the same idempotency key
                earlier = self._repo.find_by_key(conn, draft.idempotency_key or "")
            else:
                self._log.write(
                    "Outgoing",
                    "info",
                    f"message {message_id} {values['message_id']} queued",
                    account_id=account.id,
                    user=actor.email,
                    action="message_queued",
                    conn=conn,
                )
        if message_id is None:
            # After the transaction: _own opens its own, and on SQLite a second BEGIN IMMEDIATE
            # in this thread would wait out the busy timeout on our own write lock (a 500).
            assert earlier is not None
            return Submitted(self._own(actor, earlier), created=False)
        result = None
        if immediate:
            with self._engine.begin() as conn:
                claimed = self._repo.leased(conn, message_id, owner)
            result = self._delivery.deliver_one(claimed, owner)
        with self._engine.begin() as conn:
            return Submitted(self._repo.get(conn, message_id), created=True, result=result)

    def submit_many(self, actor: Actor, drafts: Sequence[Draft]) -> Sequence[OutboxMessage]:
        """Queue many messages in one transaction: all are valid and stored, or none is.

        Bulk messages are always queued (never sent inside the request) and carry no
        idempotency keys; errors name the item (`items[3].to[0]`).
        """
        if not 1 <= len(drafts) <= MAX_BULK:
            raise InvalidInput(fields={"items": f"between 1 and {MAX_BULK} messages"})
        problems: dict[str, str] = {}
        for index, draft in enumerate(drafts):
            try:
                validate_draft(draft)
                if draft.idempotency_key:
                    raise InvalidInput(fields={"idempotency_key": "not allowed in bulk submits"})
            except InvalidInput as exc:
                problems.update({f"items[{index}].{k}": v for k, v in exc.fields.items()})
        if problems:
            raise InvalidInput(fields=problems)
        now = utcnow()
        routed: dict[int | None, Account] = {}
        items = []
        for draft in drafts:
            if draft.account_id not in routed:
                routed[draft.account_id] = self._route(actor, draft)
            account = routed[draft.account_id]
            due = draft.send_after if draft.send_after and draft.send_after > now else None
            values = self._values(actor, draft, account, SendMode.QUEUED, now, due)
            items.append((values, draft.recipients()))
        with self._engine.begin() as conn:
            ids = self._repo.insert_many(conn, items)
            self._log.write(
                "Outgoing",
                "info",
                f"{len(ids)} messages queued in bulk",
                user=actor.email,
                action="bulk_queued",
                conn=conn,
            )
            return self._repo.summaries(conn, ids)

    def _route(self, actor: Actor, draft: Draft) -> Account:
        with self._engine.begin() as conn:
            decision = self._routing.decide(conn, actor, draft.account_id, actor.user_id)
        if decision.account_id is None:
            field = "account_id" if draft.account_id is not None else "from_address"
            raise InvalidInput(fields={field: f"no account can send this: {decision.explanation}"})
        account = self._accounts.get_system(decision.account_id)
        if account.outgoing is None or account.status is not AccountStatus.ACTIVE:
            raise InvalidInput(fields={"account_id": f"account {account.name!r} cannot send"})
        if account.outgoing.auth_mode is AuthMode.PER_EMPLOYEE:
            # Fails now, with the clear message, rather than in the worker an hour later.
            self._accounts.outgoing_endpoint(account.id, sender_user_id=actor.user_id)
        return account

    def _values(
        self,
        actor: Actor,
        draft: Draft,
        account: Account,
        mode: SendMode,
        now: datetime,
        due: datetime | None,
    ) -> dict[str, Any]:
        composed = compose(draft, account)
        return {
            "idempotency_key": draft.idempotency_key,
            "message_id": composed.message_id,
            "account_id": account.id,
            "sender_user_id": actor.user_id,
            "created_by": actor.email,
            "envelope_from": composed.envelope_from,
            "subject": draft.subject,
            "raw": composed.raw,
            "size": len(composed.raw),
            "mode": mode.value,
            "status": MessageStatus.QUEUED.value,
            "priority": draft.priority,
            "next_attempt_at": due or now,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "expires_at": self._policy.expires_at(now),
        }

    # -- journals ------------------------------------------------------------------------------

    def get(self, actor: Actor, message_id: int) -> OutboxMessage:
        with self._engine.begin() as conn:
            message = self._repo.get(conn, message_id)
            self._visible(conn, actor, message)
        return message

    def raw(self, actor: Actor, message_id: int) -> bytes:
        with self._engine.begin() as conn:
            self._visible(conn, actor, self._repo.get(conn, message_id, details=False))
            return self._repo.raw(conn, message_id)

    def list(self, actor: Actor, query: OutboxQuery) -> Page[OutboxMessage]:
        if not 1 <= query.limit <= 500 or query.offset < 0:
            raise InvalidInput(fields={"limit": "must be between 1 and 500 (offset ≥ 0)"})
        visible = None if actor.is_admin else actor.team_ids
        with self._engine.begin() as conn:
            items, total = self._repo.page(conn, query, visible)
        return Page(items, total, query.offset, query.limit)

    def counts(self, actor: Actor, account_id: int | None = None) -> dict[str, int]:
        if account_id is not None:
            self._accounts.get(actor, account_id)
        elif not actor.is_admin:
            raise Forbidden("only admins see the counters of all accounts")
        with self._engine.begin() as conn:
            return self._repo.counts(conn, account_id)

    def last_sent(self, actor: Actor, account_id: int) -> OutboxMessage | None:
        """The account's most recently sent message (the "last send" of its health), or None."""
        self._accounts.get(actor, account_id)
        with self._engine.begin() as conn:
            return self._repo.last_sent(conn, account_id)

    def cancel(self, actor: Actor, message_id: int) -> OutboxMessage:
        return self._act(actor, message_id, "cancel")

    def resend(self, actor: Actor, message_id: int) -> OutboxMessage:
        return self._act(actor, message_id, "resend")

    def _act(self, actor: Actor, message_id: int, action: str) -> OutboxMessage:
        now = utcnow()
        with self._engine.begin() as conn:
            message = self._repo.get(conn, message_id, details=False)
            team_id = self._visible(conn, actor, message)
            if message.sender_user_id != actor.user_id and not actor.can_manage(team_id):
                raise Forbidden(f"only the sender or a manager of the account can {action} it")
            if action == "cancel":
                self._repo.cancel(conn, message_id, now)
            else:
                self._repo.resend(conn, message_id, now, self._policy.expires_at(now))
            self._log.write(
                "Outgoing",
                "info",
                f"message {message_id} {action} by {actor.email}",
                account_id=message.account_id,
                user=actor.email,
                action=f"message_{action}",
                conn=conn,
            )
            return self._repo.get(conn, message_id)

    def _visible(self, conn: sa.Connection, actor: Actor, message: OutboxMessage) -> int | None:
        """The message's account team, or NotFound when the actor may not see it."""
        team_id = self._repo.account_team(conn, message.account_id)
        if not (actor.can_read(team_id) or message.sender_user_id == actor.user_id):
            raise NotFound(f"message {message.id} does not exist")
        return team_id

    def _own(self, actor: Actor, message: OutboxMessage) -> OutboxMessage:
        if message.sender_user_id != actor.user_id:
            raise Conflict("this idempotency key was already used by another sender")
        with self._engine.begin() as conn:
            return self._repo.get(conn, message.id)

    # -- accounts ------------------------------------------------------------------------------

    def set_paused(self, actor: Actor, account_id: int, paused: bool) -> Account:
        """Pause (nothing is claimed for it; queued mail waits) or resume an account."""
        account = self._accounts.get(actor, account_id)
        if not actor.can_manage(account.team_id):
            raise Forbidden("you cannot pause or resume this account")
        with self._engine.begin() as conn:
            self._repo.set_paused(conn, account_id, paused)
            if not paused:
                self._repo.set_auth_failing(conn, account_id, None)
            self._log.write(
                "Outgoing",
                "info",
                f"sending {'paused' if paused else 'resumed'} by {actor.email}",
                account_id=account_id,
                user=actor.email,
                action="account_paused" if paused else "account_resumed",
                conn=conn,
            )
        updated = self._accounts.get_system(account_id)
        return replace(updated, warnings=account.warnings)
