"""Latency of the accounts API with 10,000 accounts on SQLite.

Seeds the accounts in one transaction through the repository (on a temp SQLite file), then
times GET /api/v1/accounts (paged, filtered by status / team / search, as an admin and as a
team member) and GET /api/v1/accounts/{id} through FastAPI's TestClient, i.e. the whole stack
in-process: routing, token check, service, SQL, rendering. Target: p95 < 50 ms for both.

Wall-clock latency depends on what else the machine runs, so the CPU time the process spent
per request (all its threads) is measured too, with the 1-minute load average at the end.

    .venv/bin/python bench/api_accounts.py [--count 10000] [--requests 400]

The last line printed is one JSON object: {"list_p95_ms": …, "get_p95_ms": …, …}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.accounts import (
    AccountDraft,
    AccountStatus,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Security,
)
from postroom.domain.people import Actor, Role
from postroom.settings import load_settings
from postroom.storage.accounts import AccountRepository
from postroom.storage.types import utcnow
from postroom.wiring import Container, build

TEAMS = 20
WORDS = ("sales", "support", "billing", "hr", "ops", "legal", "press", "jobs", "info", "noreply")


def seed(container: Container, count: int) -> tuple[list[int], list[int]]:
    """`count` accounts over TEAMS teams (10 % system-wide), 80 % active, 15 % inactive, 5 %
    deleted; every one with an outgoing part, half with an incoming part. Returns (account
    ids, team ids)."""
    system = Actor.system()
    team_ids = [container.people.create_team(system, f"Team {i:02d}").id for i in range(TEAMS)]
    repo = AccountRepository(container.secrets)
    rng = random.Random(7)
    ids: list[int] = []
    now = utcnow()
    with container.engine.begin() as conn:
        for i in range(count):
            word = WORDS[i % len(WORDS)]
            draft = AccountDraft(
                name=f"{word} {i:05d}",
                email=f"{word}{i}@example{i % 97}.com",
                label=word.upper(),
                team_id=None if i % 10 == 0 else team_ids[i % TEAMS],
                outgoing=OutgoingDraft(
                    host=f"smtp{i % 50}.example.com", username=f"user{i}", password=f"pw-{i}"
                ),
                incoming=IncomingDraft(
                    protocol=IncomingProtocol.IMAP,
                    host=f"imap{i % 50}.example.com",
                    security=Security.SSL,
                    username=f"user{i}",
                    password=f"pw-{i}",
                )
                if i % 2
                else None,
            )
            account_id = repo.insert(conn, draft, "bench", now)
            roll = rng.random()
            if roll > 0.80:
                status = AccountStatus.INACTIVE if roll < 0.95 else AccountStatus.DELETED
                repo.set_status(conn, account_id, status, "bench", now)
            ids.append(account_id)
    return ids, team_ids


def token_for(container: Container, email: str, role: Role, team_ids: list[int]) -> str:
    system = Actor.system()
    user = container.people.create_user(system, email=email, role=role, team_ids=team_ids)
    return container.people.create_token(system, user.id, "bench")


Samples = tuple[list[float], list[float]]


def timed(calls: int, request: Callable[[int], Any]) -> Samples:
    """(wall ms, process CPU ms) per call of `request(i)`; every response must be 200."""
    wall, cpu = [], []
    for i in range(calls):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = request(i)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
    return wall, cpu


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="accounts to seed")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per scenario")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", var_dir=Path(tmp), env="test"
        )
        container = build(settings)
        container.migrate()
        started = time.perf_counter()
        ids, team_ids = seed(container, args.count)
        seed_s = time.perf_counter() - started
        admin = {"Authorization": f"Bearer {token_for(container, 'a@x.com', Role.ADMIN, [])}"}
        member = {
            "Authorization": "Bearer " + token_for(container, "m@x.com", Role.MEMBER, team_ids[:3])
        }
        rng = random.Random(11)
        pages = max(1, args.count // 50)

        with TestClient(create_app(container)) as client:

            def listing(params: dict[str, Any], headers: dict[str, str]) -> Callable[[int], Any]:
                return lambda _i: client.get("/api/v1/accounts", params=params, headers=headers)

            scenarios: dict[str, Callable[[int], Any]] = {
                "list page (admin, active, random offset)": lambda _i: client.get(
                    "/api/v1/accounts",
                    params={"offset": rng.randrange(pages // 2) * 50, "limit": 50},
                    headers=admin,
                ),
                "list status=inactive": listing({"status": "inactive"}, admin),
                "list team_id filter": listing({"team_id": team_ids[5], "status": "all"}, admin),
                "list q=support (search)": listing({"q": "support", "status": "all"}, admin),
                "list sort=-updated_at": listing({"sort": "-updated_at"}, admin),
                "list as member (3 teams + system)": listing({}, member),
            }
            for request in scenarios.values():  # warm caches and the connection pool
                timed(5, request)
            results = {name: timed(args.requests, fn) for name, fn in scenarios.items()}
            get_samples = timed(
                args.requests * 2,
                lambda _i: client.get(f"/api/v1/accounts/{rng.choice(ids)}", headers=admin),
            )
        container.close()

    list_wall = [x for wall, _ in results.values() for x in wall]
    list_cpu = [x for _, cpu in results.values() for x in cpu]
    get_wall, get_cpu = get_samples
    print(f"seeded {args.count} accounts in {seed_s:.1f} s (SQLite, one transaction)")
    print(f"{'':44} {'wall ms':>17} {'CPU ms':>17}   ({args.requests} requests each)")
    print(f"{'scenario':44} {'median':>8} {'p95':>8} {'median':>8} {'p95':>8}")
    for name, (wall, cpu) in [*results.items(), ("get by id (random)", get_samples)]:
        print(
            f"{name:44} {statistics.median(wall):8.2f} {p95(wall):8.2f}"
            f" {statistics.median(cpu):8.2f} {p95(cpu):8.2f}"
        )
    load = os.getloadavg()[0]
    list_p95, get_p95 = p95(list_wall), p95(get_wall)
    verdict = "met" if max(list_p95, get_p95) < 50 else "MISSED"
    print(
        f"p95 wall: list {list_p95:.2f} ms, get {get_p95:.2f} ms (target < 50: {verdict});"
        f" p95 CPU: list {p95(list_cpu):.2f} ms, get {p95(get_cpu):.2f} ms;"
        f" load average {load:.2f} on {os.cpu_count()} CPUs"
    )
    figures = {
        "list_p95_ms": round(list_p95, 2),
        "get_p95_ms": round(get_p95, 2),
        "list_cpu_p95_ms": round(p95(list_cpu), 2),
        "get_cpu_p95_ms": round(p95(get_cpu), 2),
        "accounts": args.count,
        "requests_per_scenario": args.requests,
        "seed_s": round(seed_s, 1),
        "load_avg_1m": round(load, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
