"""Users, teams, work locations, API tokens and per-employee credentials."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postroom.domain.people import ApiToken, Credential, Role, Team, User, WorkLocation
from postroom.errors import Conflict, InvalidInput, NotFound
from postroom.storage.secrets import SecretBox
from postroom.storage.tables.core import (
    api_tokens,
    credentials,
    team_members,
    teams,
    users,
    work_locations,
)


def token_hash(token: str) -> str:
    """API tokens are 256-bit random: a plain SHA-256 is enough (no brute force to slow down)."""
    return hashlib.sha256(token.encode()).hexdigest()


class PeopleRepository:
    def __init__(self, secrets: SecretBox) -> None:
        self._secrets = secrets

    # -- users ---------------------------------------------------------------------------------

    def _user(self, conn: sa.Connection, row: sa.Row[Any]) -> User:
        team_ids = conn.execute(
            sa.select(team_members.c.team_id)
            .where(team_members.c.user_id == row.id)
            .order_by(team_members.c.team_id)
        ).scalars()
        return User(
            id=row.id,
            email=row.email,
            name=row.name,
            role=Role(row.role),
            active=row.active,
            team_ids=tuple(team_ids),
            work_location_id=row.work_location_id,
            created_at=row.created_at,
        )

    def get_user(self, conn: sa.Connection, user_id: int) -> User:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return self._user(conn, row)

    def find_user(self, conn: sa.Connection, email: str) -> User | None:
        row = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).first()
        return None if row is None else self._user(conn, row)

    def password_hash(self, conn: sa.Connection, user_id: int) -> str | None:
        return conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar()

    def list_users(self, conn: sa.Connection) -> list[User]:
        return [self._user(conn, r) for r in conn.execute(sa.select(users).order_by(users.c.email))]

    def count_admins(self, conn: sa.Connection) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(users)
                .where(users.c.role == Role.ADMIN.value, users.c.active)
            ).scalar_one()
        )

    def insert_user(
        self,
        conn: sa.Connection,
        *,
        email: str,
        name: str,
        role: Role,
        password_hash: str | None,
        now: datetime,
    ) -> int:
        try:
            return int(
                conn.execute(
                    users.insert()
                    .values(
                        email=email.strip().lower(),
                        name=name,
                        role=role.value,
                        password_hash=password_hash,
                        created_at=now,
                    )
                    .returning(users.c.id)
                ).scalar_one()
            )
        except IntegrityError as exc:
            raise Conflict(f"a user with e-mail {email!r} already exists") from exc

    def update_user(self, conn: sa.Connection, user_id: int, **values: Any) -> None:
        if "work_location_id" in values and values["work_location_id"] is not None:
            self.get_location(conn, values["work_location_id"])
        conn.execute(users.update().where(users.c.id == user_id).values(**values))

    def set_user_teams(self, conn: sa.Connection, user_id: int, team_ids: list[int]) -> None:
        known = set(conn.execute(sa.select(teams.c.id).where(teams.c.id.in_(team_ids))).scalars())
        missing = sorted(set(team_ids) - known)
        if missing:
            raise InvalidInput(
                fields={"team_ids": f"unknown team(s): {', '.join(map(str, missing))}"}
            )
        conn.execute(team_members.delete().where(team_members.c.user_id == user_id))
        if team_ids:
            conn.execute(
                team_members.insert(),
                [{"team_id": t, "user_id": user_id} for t in sorted(set(team_ids))],
            )

    # -- teams and work locations -----------------------------------------------------------------

    def insert_team(self, conn: sa.Connection, name: str, now: datetime) -> Team:
        try:
            team_id = conn.execute(
                teams.insert()
                .values(name=name.strip(), name_key=name.strip().casefold(), created_at=now)
                .returning(teams.c.id)
            ).scalar_one()
        except IntegrityError as exc:
            raise Conflict(f"a team named {name!r} already exists") from exc
        return Team(team_id, name.strip(), now)

    def list_teams(self, conn: sa.Connection) -> list[Team]:
        return [
            Team(r.id, r.name, r.created_at)
            for r in conn.execute(sa.select(teams).order_by(teams.c.name_key))
        ]

    def get_team(self, conn: sa.Connection, team_id: int) -> Team:
        row = conn.execute(sa.select(teams).where(teams.c.id == team_id)).first()
        if row is None:
            raise NotFound(f"team {team_id} does not exist")
        return Team(row.id, row.name, row.created_at)

    def insert_location(
        self, conn: sa.Connection, name: str, address: str, now: datetime
    ) -> WorkLocation:
        try:
            loc_id = conn.execute(
                work_locations.insert()
                .values(
                    name=name.strip(),
                    name_key=name.strip().casefold(),
                    address=address,
                    created_at=now,
                )
                .returning(work_locations.c.id)
            ).scalar_one()
        except IntegrityError as exc:
            raise Conflict(f"a work location named {name!r} already exists") from exc
        return WorkLocation(loc_id, name.strip(), address, now)

    def list_locations(self, conn: sa.Connection) -> list[WorkLocation]:
        rows = conn.execute(sa.select(work_locations).order_by(work_locations.c.name_key))
        return [WorkLocation(r.id, r.name, r.address, r.created_at) for r in rows]

    def get_location(self, conn: sa.Connection, location_id: int) -> WorkLocation:
        row = conn.execute(
            sa.select(work_locations).where(work_locations.c.id == location_id)
        ).first()
        if row is None:
            raise NotFound(f"work location {location_id} does not exist")
        return WorkLocation(row.id, row.name, row.address, row.created_at)

    # -- API tokens ------------------------------------------------------------------------------

    def insert_token(
        self, conn: sa.Connection, user_id: int, name: str, token: str, now: datetime
    ) -> ApiToken:
        token_id = conn.execute(
            api_tokens.insert()
            .values(
                user_id=user_id,
                name=name,
                token_hash=token_hash(token),
                prefix=token[:8],
                created_at=now,
            )
            .returning(api_tokens.c.id)
        ).scalar_one()
        return ApiToken(token_id, user_id, name, token[:8], now, None, None)

    def user_for_token(self, conn: sa.Connection, token: str, now: datetime) -> User | None:
        row = conn.execute(
            sa.select(api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None)
            )
        ).first()
        if row is None:
            return None
        # A write per request would serialise every API call on SQLite; a minute is precise enough.
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
            )
        user = self.get_user(conn, row.user_id)
        return user if user.active else None

    def list_tokens(self, conn: sa.Connection, user_id: int | None) -> list[ApiToken]:
        q = sa.select(api_tokens).order_by(api_tokens.c.id)
        if user_id is not None:
            q = q.where(api_tokens.c.user_id == user_id)
        return [
            ApiToken(r.id, r.user_id, r.name, r.prefix, r.created_at, r.last_used_at, r.revoked_at)
            for r in conn.execute(q)
        ]

    def revoke_token(self, conn: sa.Connection, token_id: int, now: datetime) -> int:
        """Revoke; returns the owner's user id."""
        owner = conn.execute(
            sa.select(api_tokens.c.user_id).where(api_tokens.c.id == token_id)
        ).scalar()
        if owner is None:
            raise NotFound(f"token {token_id} does not exist")
        conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now))
        return int(owner)

    # -- per-employee credentials ------------------------------------------------------------

    def put_credential(
        self,
        conn: sa.Connection,
        user_id: int,
        account_id: int,
        username: str,
        password: str | None,
        now: datetime,
    ) -> None:
        existing = conn.execute(
            sa.select(credentials.c.id).where(
                credentials.c.user_id == user_id, credentials.c.account_id == account_id
            )
        ).scalar()
        values: dict[str, Any] = {"username": username, "updated_at": now}
        if password:
            values["password_enc"] = self._secrets.encrypt(password)
        if existing is None:
            if not password:
                raise InvalidInput(fields={"password": "is required for new credentials"})
            conn.execute(
                credentials.insert().values(user_id=user_id, account_id=account_id, **values)
            )
        else:
            conn.execute(credentials.update().where(credentials.c.id == existing).values(**values))

    def delete_credential(self, conn: sa.Connection, user_id: int, account_id: int) -> bool:
        result = conn.execute(
            credentials.delete().where(
                credentials.c.user_id == user_id, credentials.c.account_id == account_id
            )
        )
        return bool(result.rowcount)

    def list_credentials(self, conn: sa.Connection, user_id: int) -> list[Credential]:
        rows = conn.execute(
            sa.select(credentials)
            .where(credentials.c.user_id == user_id)
            .order_by(credentials.c.account_id)
        )
        return [Credential(r.user_id, r.account_id, r.username, r.updated_at) for r in rows]

    def credential_secret(
        self, conn: sa.Connection, user_id: int, account_id: int
    ) -> tuple[str, str] | None:
        """(username, decrypted password) or None."""
        row = conn.execute(
            sa.select(credentials.c.username, credentials.c.password_enc).where(
                credentials.c.user_id == user_id, credentials.c.account_id == account_id
            )
        ).first()
        return None if row is None else (row.username, self._secrets.decrypt(row.password_enc))

    def reencrypt_credentials(self, conn: sa.Connection) -> int:
        changed = 0
        for cred_id, enc in conn.execute(
            sa.select(credentials.c.id, credentials.c.password_enc)
        ).all():
            if self._secrets.needs_rotation(enc):
                conn.execute(
                    credentials.update()
                    .where(credentials.c.id == cred_id)
                    .values(password_enc=self._secrets.rotate(enc))
                )
                changed += 1
        return changed
