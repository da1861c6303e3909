"""Render times of the web UI's heaviest pages, in-process through the full ASGI stack.

Seeds 1,000 accounts and one account with 500 timeline entries on a temp SQLite database, logs
in as an admin, then renders the accounts list (a different page each time) and the account
page. Prints p95 in milliseconds (target < 100 ms each); the LAST line is one JSON object with
accounts_list_p95_ms and account_page_p95_ms.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security
from postroom.domain.people import Actor, Role
from postroom.settings import load_settings
from postroom.wiring import build

PASSWORD = "bench password 1"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--timeline", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="postroom-bench-web-"))
    container = build(
        load_settings(database_url=f"sqlite:///{tmp}/bench.db", var_dir=tmp, env="test")
    )
    container.migrate()
    system = Actor.system()
    team = container.people.create_team(system, "Bench").id
    for i in range(args.accounts):
        out = OutgoingDraft(
            host=f"smtp{i}.example.com", security=Security.SSL, auth_mode=AuthMode.NONE
        )
        draft = AccountDraft(
            name=f"Account {i:04d}",
            email=f"a{i}@example.com",
            color="#1f6feb",
            team_id=team if i % 2 else None,
            outgoing=out,
        )
        container.accounts.create(system, draft)
    target = container.accounts.find(system, "Account 0000").id
    for i in range(args.timeline):
        if i % 5 == 0:
            container.audit.add_comment(system, target, f"comment {i}")
        else:
            container.log.write("Outgoing", "info", f"message {i} sent", account_id=target)
    container.people.create_user(
        system, email="bench@example.com", role=Role.ADMIN, password=PASSWORD
    )

    client = TestClient(create_app(container), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post(
        "/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    pages = max(1, args.accounts // 25)

    def timed(path: str) -> float:
        start = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, (path, response.status_code)
        return elapsed

    timed("/accounts?team=all")  # warm-up: template compilation
    timed(f"/accounts/{target}")
    listing = [timed(f"/accounts?team=all&page={1 + i % pages}") for i in range(args.requests)]
    account = [timed(f"/accounts/{target}") for _ in range(args.requests)]
    result = {
        "accounts": args.accounts,
        "timeline_entries": args.timeline,
        "requests": args.requests,
        "accounts_list_p95_ms": round(p95(listing), 2),
        "account_page_p95_ms": round(p95(account), 2),
    }
    print(
        f"accounts list (1 page of 25 out of {args.accounts}): p95 {result['accounts_list_p95_ms']} ms"
    )
    print(
        f"account page ({args.timeline} timeline entries): p95 {result['account_page_p95_ms']} ms"
    )
    container.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
