"""CSRF protection for every state-changing request of the web UI.

Two independent checks, both required (OWASP "synchronizer token" plus origin verification):
the per-session token must come back in the form field `csrf_token` (or the `X-CSRF-Token`
header for our own script), and an `Origin` header, when the browser sends one, must name this
host. A forged cross-site POST fails the first check even when the browser attaches the cookie.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from postroom.errors import Forbidden
from postroom.web.session import Session

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def verify(request: Request, session: Session) -> None:
    """Raise Forbidden unless `request` carries the session's token and comes from our origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("cross-site request refused")
    sent = request.headers.get(HEADER, "")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(FIELD, "")
            sent = value if isinstance(value, str) else ""
    expected = session.data.get("c")
    if not sent or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise Forbidden("the form has expired or did not come from this site; reload and retry")
