"""Configure: create, change, list and retire mail accounts; hand connection details to the
layers that talk to servers.

Every change runs in one transaction together with its audit entry, so there is never a change
without its trail, nor a half-written account.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountQuery,
    AccountStatus,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
    Transport,
    account_warnings,
    next_status,
    validate_draft,
)
from postroom.domain.people import Actor
from postroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from postroom.protocols.endpoints import Endpoint, Secret
from postroom.services.audit import AuditService, diff
from postroom.services.pages import Page
from postroom.storage.accounts import AccountRepository, Direction, draft_of
from postroom.storage.people import PeopleRepository
from postroom.storage.types import utcnow

ACTIONS = ("activate", "deactivate", "delete", "restore")

# A verifier probes a draft's servers before it is saved (validate on save) and raises
# InvalidInput naming the failing step; the int is the account id for an update (so a blank
# password can be taken from storage), None for a create.
Verifier = Callable[[AccountDraft, int | None], None]


def _coerce(cls: type, current: Any, changes: Mapping[str, Any], prefix: str) -> Any:
    """`current` (a draft dataclass or None) with `changes` applied, field by field.

    Unknown fields are refused by name; nested parts are merged, not replaced, so a PATCH of
    `outgoing.port` keeps the rest of the outgoing part.
    """
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise InvalidInput(fields={f"{prefix}{k}": "is not a known field" for k in unknown})
    base = current if current is not None else cls(**_required_defaults(cls))
    values: dict[str, Any] = {}
    for key, value in changes.items():
        nested = {"outgoing": OutgoingDraft, "incoming": IncomingDraft}.get(key)
        if nested is not None and isinstance(value, Mapping):
            values[key] = _coerce(nested, getattr(base, key), value, f"{key}.")
        elif isinstance(value, list):
            values[key] = tuple(value)
        else:
            values[key] = value
    return replace(base, **values)


def _required_defaults(cls: type) -> dict[str, Any]:
    return {"name": "", "email": ""} if cls is AccountDraft else {}


class AccountService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: AccountRepository,
        people: PeopleRepository,
        audit: AuditService,
        cafile: str | None = None,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._people = people
        self._audit = audit
        self._cafile = cafile

    # -- reads ---------------------------------------------------------------------------------

    def get(self, actor: Actor, account_id: int) -> Account:
        with self._engine.begin() as conn:
            return self._visible(conn, actor, account_id)

    def find(self, actor: Actor, key: str) -> Account:
        """By id (digits) or by name (case-insensitive): what the CLI takes as ACCOUNT."""
        with self._engine.begin() as conn:
            if key.isdigit():
                return self._visible(conn, actor, int(key))
            account = self._repo.find_by_name(conn, key)
            if account is None or not actor.can_read(account.team_id):
                raise NotFound(f"no account named {key!r}")
            return replace(account, warnings=account_warnings(account))

    def list(self, actor: Actor, query: AccountQuery) -> Page[Account]:
        if query.sort not in (
            "name",
            "-name",
            "created_at",
            "-created_at",
            "updated_at",
            "-updated_at",
            "id",
            "-id",
        ):
            raise InvalidInput(
                fields={
                    "sort": "must be name, created_at, updated_at or id, optionally prefixed by -"
                }
            )
        if not 1 <= query.limit <= 500 or query.offset < 0:
            raise InvalidInput(fields={"limit": "must be between 1 and 500 (offset ≥ 0)"})
        visible = None if actor.is_admin else actor.team_ids
        with self._engine.begin() as conn:
            items, total = self._repo.page(conn, query, visible)
        return Page(
            [replace(a, warnings=account_warnings(a)) for a in items],
            total,
            query.offset,
            query.limit,
        )

    def get_system(self, account_id: int) -> Account:
        """No access check: for the worker and scheduler only."""
        with self._engine.begin() as conn:
            return self._repo.get(conn, account_id)

    # -- writes --------------------------------------------------------------------------------

    def create(self, actor: Actor, draft: AccountDraft, verify: Verifier | None = None) -> Account:
        """Store a new account (active). With `verify`, the draft's servers are probed first
        and nothing is stored when a probe fails (the verifier raises)."""
        self._validate(draft)
        self._check_sendmail(actor, draft, None)
        if not actor.can_manage(draft.team_id):
            raise Forbidden(
                "you cannot create accounts for this team"
                if draft.team_id
                else "only admins can create system-wide accounts"
            )
        if verify is not None:
            verify(draft, None)
        with self._engine.begin() as conn:
            account_id = self._repo.insert(conn, draft, actor.email, utcnow())
            self._audit.record(
                conn, actor, "create", "account", account_id, diff(None, draft), account_id
            )
            return self._with_warnings(self._repo.get(conn, account_id))

    def update(
        self,
        actor: Actor,
        account_id: int,
        changes: Mapping[str, Any],
        verify: Verifier | None = None,
    ) -> Account:
        """Apply a partial change. An empty or missing password keeps the stored one; `outgoing`
        or `incoming` set to None removes that part. With `verify`, the merged values are probed
        before anything is written (outside the transaction, so no lock is held on the network)."""
        with self._engine.begin() as conn:
            current = self._manageable(conn, actor, account_id)
        draft = self._merged(actor, current, changes)
        if verify is not None:
            verify(draft, account_id)
        with self._engine.begin() as conn:
            latest = self._manageable(conn, actor, account_id)
            if latest.updated_at != current.updated_at:
                raise Conflict(
                    "the account was changed by someone else meanwhile; reload and try again"
                )
            before = draft_of(latest)
            self._repo.update(conn, account_id, draft, actor.email, utcnow())
            changed = diff(before, draft)
            if changed:
                self._audit.record(
                    conn, actor, "update", "account", account_id, changed, account_id
                )
            return self._with_warnings(self._repo.get(conn, account_id))

    def _merged(self, actor: Actor, current: Account, changes: Mapping[str, Any]) -> AccountDraft:
        if current.status is AccountStatus.DELETED:
            raise Conflict("a deleted account cannot be changed; restore it first")
        before = draft_of(current)
        draft: AccountDraft = _coerce(AccountDraft, before, changes, "")
        self._validate(draft)
        self._check_sendmail(actor, draft, before)
        if draft.team_id != current.team_id:
            if not actor.can_manage(draft.team_id):
                raise Forbidden("you cannot move an account to that team")
            if current.is_default_outgoing or current.is_default_incoming:
                raise Conflict("a default account cannot change team; unset the default first")
        return draft

    def transition(self, actor: Actor, account_id: int, action: str) -> Account:
        if action not in ACTIONS:
            raise InvalidInput(fields={"action": f"must be one of {', '.join(ACTIONS)}"})
        with self._engine.begin() as conn:
            current = self._manageable(conn, actor, account_id)
            target = next_status(current.status, action)
            if target is None:
                raise Conflict(f"cannot {action} an account that is {current.status.value}")
            self._repo.set_status(conn, account_id, target, actor.email, utcnow())
            self._audit.record(
                conn,
                actor,
                action,
                "account",
                account_id,
                {"status": [current.status.value, target.value]},
                account_id,
            )
            return self._with_warnings(self._repo.get(conn, account_id))

    def set_default(
        self, actor: Actor, account_id: int, direction: Literal["outgoing", "incoming"]
    ) -> Account:
        if direction not in ("outgoing", "incoming"):
            raise InvalidInput(fields={"direction": "must be outgoing or incoming"})
        with self._engine.begin() as conn:
            current = self._manageable(conn, actor, account_id)
            if current.status is not AccountStatus.ACTIVE:
                raise Conflict("only an active account can be the default")
            if getattr(current, direction) is None:
                raise Conflict(f"the account has no {direction} server")
            previous = self._repo.set_default(conn, account_id, direction, current.team_id)
            if previous != account_id:
                self._audit.record(
                    conn,
                    actor,
                    f"set-default-{direction}",
                    "account",
                    account_id,
                    {f"default_{direction}": [False, True]},
                    account_id,
                )
                if previous is not None:
                    self._audit.record(
                        conn,
                        actor,
                        f"unset-default-{direction}",
                        "account",
                        previous,
                        {f"default_{direction}": [True, False]},
                        previous,
                    )
            return self._with_warnings(self._repo.get(conn, account_id))

    def default_for(self, direction: Direction, team_id: int | None) -> Account | None:
        with self._engine.begin() as conn:
            return self._repo.default_for(conn, direction, team_id)

    def for_work_location(self, location_id: int) -> builtins.list[Account]:
        with self._engine.begin() as conn:
            return self._repo.for_work_location(conn, location_id)

    def record_check(self, account_id: int, ok: bool, error: str, at: datetime) -> None:
        """Update health after a connection check: last_check_at, last_ok_at, failing_since."""
        with self._engine.begin() as conn:
            health = self._repo.health(conn, account_id)
            values: dict[str, Any] = {"last_check_at": at}
            if ok:
                values.update(last_ok_at=at, failing_since=None, last_error="")
            else:
                values.update(last_error=error[:2000], failing_since=health["failing_since"] or at)
            self._repo.set_health(conn, account_id, **values)

    def health(self, account_id: int) -> dict[str, Any]:
        """last_check_at, last_ok_at, failing_since, last_error."""
        with self._engine.begin() as conn:
            return self._repo.health(conn, account_id)

    def health_of(self, account_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """`health()` of many accounts in one query, for list pages (ids the caller has read)."""
        with self._engine.begin() as conn:
            return self._repo.health_of(conn, account_ids)

    # -- connection details for the protocol layers ------------------------------------------------

    def outgoing_endpoint(
        self, account_id: int, *, sender_user_id: int | None = None
    ) -> tuple[Account, Endpoint]:
        """The account and an Endpoint with the decrypted password (no access check: callers
        have already decided the send is allowed). per_employee auth uses the sender's own
        stored credentials."""
        with self._engine.begin() as conn:
            account = self._repo.get(conn, account_id)
            return account, self._outgoing_endpoint(conn, account, sender_user_id)

    def sending_endpoint(self, account: Account, *, sender_user_id: int | None = None) -> Endpoint:
        """`outgoing_endpoint` for an account already loaded (the worker, once per connection):
        only the password is read."""
        with self._engine.begin() as conn:
            return self._outgoing_endpoint(conn, account, sender_user_id)

    def _outgoing_endpoint(
        self, conn: sa.Connection, account: Account, sender_user_id: int | None
    ) -> Endpoint:
        out = account.outgoing
        if out is None:
            raise Conflict(f"account {account.name!r} has no outgoing server")
        username, password = out.username, None
        if out.auth_mode is AuthMode.CENTRAL:
            password = self._repo.stored_password(conn, account.id, "outgoing")
        elif out.auth_mode is AuthMode.PER_EMPLOYEE:
            cred = (
                None
                if sender_user_id is None
                else self._people.credential_secret(conn, sender_user_id, account.id)
            )
            if cred is None:
                raise InvalidInput(
                    fields={
                        "credentials": f"account {account.name!r} sends with each employee's own login, and the sender has none stored (My settings → credentials)"
                    }
                )
            username, password = cred
        else:
            username = ""
        return self._endpoint(out.host or "localhost", out.port, out, username, password)

    def incoming_endpoint(self, account_id: int) -> tuple[Account, Endpoint]:
        with self._engine.begin() as conn:
            account = self._repo.get(conn, account_id)
            return account, self._incoming_endpoint(conn, account)

    def receiving_endpoint(self, account: Account) -> Endpoint:
        """`incoming_endpoint` for an account already loaded: only the password is read."""
        with self._engine.begin() as conn:
            return self._incoming_endpoint(conn, account)

    def _incoming_endpoint(self, conn: sa.Connection, account: Account) -> Endpoint:
        inc = account.incoming
        if inc is None:
            raise Conflict(f"account {account.name!r} has no incoming server")
        password = self._repo.stored_password(conn, account.id, "incoming")
        return self._endpoint(inc.host, inc.port, inc, inc.username, password)

    def stored_password(self, account_id: int, direction: Direction) -> str | None:
        """For checks of unsaved form values where the password field was left blank."""
        with self._engine.begin() as conn:
            return self._repo.stored_password(conn, account_id, direction)

    def reencrypt(self) -> int:
        with self._engine.begin() as conn:
            return self._repo.reencrypt_all(conn) + self._people.reencrypt_credentials(conn)

    # -- helpers -------------------------------------------------------------------------------

    def _endpoint(
        self, host: str, port: int, part: Any, username: str, password: str | None
    ) -> Endpoint:
        return Endpoint(
            host=host,
            port=port,
            security=part.security,
            verify_certificate=part.verify_certificate,
            username=username,
            password=Secret(password) if password else None,
            timeout_s=getattr(part, "timeout_s", 30.0),
            helo_name=getattr(part, "helo_name", ""),
            cafile=self._cafile,
        )

    @staticmethod
    def _validate(draft: AccountDraft) -> None:
        errors = validate_draft(draft)
        if errors:
            raise InvalidInput(fields=errors)

    @staticmethod
    def _check_sendmail(actor: Actor, draft: AccountDraft, before: AccountDraft | None) -> None:
        """The worker executes `sendmail_path`: only an admin may point it somewhere new."""
        out = draft.outgoing
        if out is None or out.transport is not Transport.SENDMAIL or actor.is_admin:
            return
        old = before.outgoing if before is not None else None
        if (
            old is None
            or old.transport is not Transport.SENDMAIL
            or old.sendmail_path != out.sendmail_path
        ):
            raise Forbidden(
                "only admins can configure the local sendmail transport (it runs a program)"
            )

    def _visible(self, conn: sa.Connection, actor: Actor, account_id: int) -> Account:
        account = self._repo.get(conn, account_id)
        if not actor.can_read(account.team_id):
            # Not 403: a member of team A must not learn that team B's account exists.
            raise NotFound(f"account {account_id} does not exist")
        return self._with_warnings(account)

    def _manageable(self, conn: sa.Connection, actor: Actor, account_id: int) -> Account:
        account = self._visible(conn, actor, account_id)
        if not actor.can_manage(account.team_id):
            raise Forbidden("you cannot change this account")
        return account

    @staticmethod
    def _with_warnings(account: Account) -> Account:
        return replace(account, warnings=account_warnings(account))
