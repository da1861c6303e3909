"""The browser session: a signed cookie (itsdangerous) holding the user id, the CSRF token, the
selected team and one-shot notices. Nothing secret is stored in it; it is signed, not encrypted.

Cookie flags: HttpOnly (scripts cannot read it), SameSite=Lax (not sent on cross-site POSTs),
Secure in production (only over HTTPS; development and tests serve plain HTTP on loopback).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from postroom.settings import new_token

COOKIE = "postroom_session"


@dataclass
class Session:
    """The decoded cookie. Mutators mark it changed so the response re-issues the cookie."""

    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def user_id(self) -> int | None:
        value = self.data.get("u")
        return value if isinstance(value, int) else None

    @property
    def csrf_token(self) -> str:
        token = self.data.get("c")
        if not isinstance(token, str) or not token:
            token = new_token()
            self.data["c"] = token
            self.changed = True
        return token

    @property
    def team_id(self) -> int | None:
        value = self.data.get("t")
        return value if isinstance(value, int) else None

    def login(self, user_id: int) -> None:
        """Start a fresh session for `user_id` (new CSRF token: no fixation across the login)."""
        self.data = {"u": user_id, "c": new_token()}
        self.changed = True

    def logout(self) -> None:
        self.data = {"c": new_token()}
        self.changed = True

    def select_team(self, team_id: int | None) -> None:
        self.data["t"] = team_id
        self.changed = True

    def notify(self, message: str, kind: str = "ok") -> None:
        """Queue a notice for the next page (POST → redirect → GET shows it once)."""
        self.data.setdefault("n", []).append([kind, message[:500]])
        self.changed = True

    def pop_notices(self) -> list[tuple[str, str]]:
        notices = self.data.pop("n", [])
        if notices:
            self.changed = True
        return [(str(kind), str(text)) for kind, text in notices]


class SessionCodec:
    """Reads and writes the session cookie."""

    def __init__(self, secret_key: str, max_age_s: int, secure: bool) -> None:
        # A key of its own, derived from the master key, so the session signature never
        # reuses the encryption key directly.
        derived = hmac.new(secret_key.encode(), b"postroom web session", hashlib.sha256).hexdigest()
        self._serializer = URLSafeTimedSerializer(derived, salt="postroom.session")
        self._max_age_s = max_age_s
        self.secure = secure

    def load(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=self._max_age_s)
            except BadSignature:
                data = None
            if isinstance(data, dict):
                return Session(data)
        return Session()

    def save(self, session: Session, response: Response) -> None:
        if not session.changed:
            return
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(session.data),
            max_age=self._max_age_s,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
