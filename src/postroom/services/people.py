"""Users, teams, work locations, API tokens and per-employee credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import sqlalchemy as sa

from postroom.domain.accounts import AuthMode
from postroom.domain.people import Actor, ApiToken, Credential, Role, Team, User, WorkLocation
from postroom.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from postroom.services.audit import AuditService
from postroom.storage.accounts import AccountRepository
from postroom.storage.people import PeopleRepository
from postroom.storage.types import utcnow

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """scrypt (stdlib) with a random salt: `scrypt$<salt>$<hash>`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins can do this")


def _check_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not (at and local and domain) or any(c in email for c in " \r\n\x00"):
        raise InvalidInput(fields={"email": "is not an e-mail address"})
    return email


class PeopleService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: PeopleRepository,
        accounts: AccountRepository,
        audit: AuditService,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._accounts = accounts
        self._audit = audit

    # -- users ---------------------------------------------------------------------------------

    def create_user(
        self,
        actor: Actor,
        *,
        email: str,
        role: Role,
        name: str = "",
        password: str | None = None,
        team_ids: list[int] | None = None,
    ) -> User:
        _require_admin(actor)
        email = _check_email(email)
        if password is not None and len(password) < 10:
            raise InvalidInput(fields={"password": "must be at least 10 characters"})
        with self._engine.begin() as conn:
            user_id = self._repo.insert_user(
                conn,
                email=email,
                name=name,
                role=Role(role),
                password_hash=hash_password(password) if password else None,
                now=utcnow(),
            )
            self._repo.set_user_teams(conn, user_id, team_ids or [])
            self._audit.record(
                conn,
                actor,
                "create",
                "user",
                user_id,
                {"email": [None, email], "role": [None, Role(role).value]},
            )
            return self._repo.get_user(conn, user_id)

    def update_user(
        self,
        actor: Actor,
        user_id: int,
        *,
        role: Role | None = None,
        name: str | None = None,
        active: bool | None = None,
        team_ids: list[int] | None = None,
        password: str | None = None,
    ) -> User:
        _require_admin(actor)
        with self._engine.begin() as conn:
            before = self._repo.get_user(conn, user_id)
            values: dict[str, object] = {}
            if role is not None:
                values["role"] = Role(role).value
            if name is not None:
                values["name"] = name
            if active is not None:
                values["active"] = active
            if password:
                if len(password) < 10:
                    raise InvalidInput(fields={"password": "must be at least 10 characters"})
                values["password_hash"] = hash_password(password)
            if values:
                self._repo.update_user(conn, user_id, **values)
            if team_ids is not None:
                self._repo.set_user_teams(conn, user_id, team_ids)
            if before.role is Role.ADMIN and self._repo.count_admins(conn) == 0:
                raise Conflict("the last active admin cannot be demoted or deactivated")
            after = self._repo.get_user(conn, user_id)
            changes = {
                k: [getattr(before, k), getattr(after, k)]
                for k in ("role", "name", "active", "team_ids")
                if getattr(before, k) != getattr(after, k)
            }
            if password:
                changes["password"] = [None, "***"]
            self._audit.record(
                conn,
                actor,
                "update",
                "user",
                user_id,
                {k: [str(a), str(b)] for k, (a, b) in changes.items()},
            )
            return after

    def list_users(self, actor: Actor) -> list[User]:
        with self._engine.begin() as conn:
            users = self._repo.list_users(conn)
        if actor.is_admin:
            return users
        return [u for u in users if u.id == actor.user_id or set(u.team_ids) & actor.team_ids]

    def get_user(self, actor: Actor, user_id: int) -> User:
        if not actor.is_admin and actor.user_id != user_id:
            raise NotFound(f"user {user_id} does not exist")
        with self._engine.begin() as conn:
            return self._repo.get_user(conn, user_id)

    def find_user(self, email: str) -> User | None:
        with self._engine.begin() as conn:
            return self._repo.find_user(conn, email)

    def has_admin(self) -> bool:
        with self._engine.begin() as conn:
            return self._repo.count_admins(conn) > 0

    def login(self, email: str, password: str) -> User:
        """Check an e-mail + password (web login). The same error for unknown user and bad
        password, so the form does not reveal which e-mails exist."""
        with self._engine.begin() as conn:
            user = self._repo.find_user(conn, email)
            stored = self._repo.password_hash(conn, user.id) if user else None
        if user is None or not user.active or not verify_password(password, stored):
            raise Unauthenticated("wrong e-mail or password")
        return user

    def actor_for(self, user_id: int) -> Actor | None:
        with self._engine.begin() as conn:
            try:
                user = self._repo.get_user(conn, user_id)
            except NotFound:
                return None
        return user.as_actor() if user.active else None

    # -- tokens --------------------------------------------------------------------------------

    def create_token(self, actor: Actor, user_id: int, name: str = "") -> str:
        """Create an API token and return it; only its hash is stored, so this is the one time
        it can be seen."""
        if not actor.is_admin and actor.user_id != user_id:
            raise Forbidden("you can only create tokens for yourself")
        token = "pr_" + secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            self._repo.get_user(conn, user_id)
            record = self._repo.insert_token(conn, user_id, name, token, utcnow())
            self._audit.record(
                conn,
                actor,
                "create",
                "token",
                record.id,
                {"user_id": [None, user_id], "name": [None, name]},
            )
        return token

    def authenticate(self, token: str) -> Actor:
        if not token:
            raise Unauthenticated("an API token is required (Authorization: Bearer …)")
        with self._engine.begin() as conn:
            user = self._repo.user_for_token(conn, token, utcnow())
        if user is None:
            raise Unauthenticated("the API token is not valid")
        return user.as_actor()

    def list_tokens(self, actor: Actor) -> list[ApiToken]:
        with self._engine.begin() as conn:
            return self._repo.list_tokens(conn, None if actor.is_admin else actor.user_id)

    def revoke_token(self, actor: Actor, token_id: int) -> None:
        with self._engine.begin() as conn:
            tokens = {t.id: t for t in self._repo.list_tokens(conn, None)}
            token = tokens.get(token_id)
            if token is None or (not actor.is_admin and token.user_id != actor.user_id):
                raise NotFound(f"token {token_id} does not exist")
            self._repo.revoke_token(conn, token_id, utcnow())
            self._audit.record(conn, actor, "revoke", "token", token_id, {"revoked": [False, True]})

    # -- teams and work locations -------------------------------------------------------------------

    def create_team(self, actor: Actor, name: str) -> Team:
        _require_admin(actor)
        if not name.strip() or len(name) > 120:
            raise InvalidInput(fields={"name": "is required (at most 120 characters)"})
        with self._engine.begin() as conn:
            team = self._repo.insert_team(conn, name, utcnow())
            self._audit.record(conn, actor, "create", "team", team.id, {"name": [None, team.name]})
            return team

    def list_teams(self, actor: Actor) -> list[Team]:
        with self._engine.begin() as conn:
            teams = self._repo.list_teams(conn)
        return teams if actor.is_admin else [t for t in teams if t.id in actor.team_ids]

    def create_location(self, actor: Actor, name: str, address: str = "") -> WorkLocation:
        _require_admin(actor)
        if not name.strip() or len(name) > 120:
            raise InvalidInput(fields={"name": "is required (at most 120 characters)"})
        with self._engine.begin() as conn:
            loc = self._repo.insert_location(conn, name, address, utcnow())
            self._audit.record(
                conn, actor, "create", "work_location", loc.id, {"name": [None, loc.name]}
            )
            return loc

    def list_locations(self) -> list[WorkLocation]:
        with self._engine.begin() as conn:
            return self._repo.list_locations(conn)

    def set_my_location(self, actor: Actor, location_id: int | None) -> User:
        if actor.user_id is None:
            raise Forbidden("the system actor has no work location")
        with self._engine.begin() as conn:
            if location_id is not None:
                self._repo.get_location(conn, location_id)
            self._repo.update_user(conn, actor.user_id, work_location_id=location_id)
            self._audit.record(
                conn,
                actor,
                "set-work-location",
                "user",
                actor.user_id,
                {"work_location_id": [None, location_id]},
            )
            return self._repo.get_user(conn, actor.user_id)

    # -- per-employee credentials (seed 004 "My details") ------------------------------------------

    def put_my_credentials(
        self, actor: Actor, account_id: int, username: str, password: str | None
    ) -> Credential:
        if actor.user_id is None:
            raise Forbidden("the system actor has no credentials")
        if not username or any(c in username for c in "\r\n\x00"):
            raise InvalidInput(fields={"username": "is required, without line breaks"})
        with self._engine.begin() as conn:
            account = self._accounts.get(conn, account_id)
            if not actor.can_read(account.team_id):
                raise NotFound(f"account {account_id} does not exist")
            if account.outgoing is None or account.outgoing.auth_mode is not AuthMode.PER_EMPLOYEE:
                raise Conflict("this account does not use per-employee credentials")
            self._repo.put_credential(conn, actor.user_id, account_id, username, password, utcnow())
            self._audit.record(
                conn,
                actor,
                "set-credentials",
                "credential",
                account_id,
                {
                    "username": [None, username],
                    "password": [None, "***"] if password else [None, None],
                },
                account_id,
            )
            return next(
                c
                for c in self._repo.list_credentials(conn, actor.user_id)
                if c.account_id == account_id
            )

    def my_credentials(self, actor: Actor) -> list[Credential]:
        if actor.user_id is None:
            return []
        with self._engine.begin() as conn:
            return self._repo.list_credentials(conn, actor.user_id)

    def delete_my_credentials(self, actor: Actor, account_id: int) -> None:
        if actor.user_id is None:
            return
        with self._engine.begin() as conn:
            if not self._repo.delete_credential(conn, actor.user_id, account_id):
                raise NotFound("no credentials stored for this account")
            self._audit.record(
                conn, actor, "delete-credentials", "credential", account_id, {}, account_id
            )
