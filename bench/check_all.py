"""Bulk connection check: 300 accounts against local peers, 30 % of them black-holed.

The healthy accounts point at an in-process aiosmtpd with AUTH (each probe: connect, greeting,
EHLO, AUTH, MAIL, RCPT, DATA up to 354); the black-holed ones at a scripted peer that accepts
the connection and never speaks, so each of those probes runs until its deadline. Everything
goes through CheckService.check_all on a temp SQLite file — history rows, log entries and health
included. Target: total wall time / one probe's deadline <= 2.

    .venv/bin/python bench/check_all.py [--accounts 300] [--blackholed 0.3] [--deadline 3]
                                        [--concurrency 128]

The last line printed is one JSON object: accounts, blackholed, deadline_s, wall_s, ratio
(plus concurrency, failed, max_probe_s).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from postroom.domain.accounts import AccountDraft, OutgoingDraft, Security
from postroom.domain.checks import ErrorClass
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.testing.peers import Script, ScriptedPeer, Silence, SmtpPeer
from postroom.wiring import build

USER, PASSWORD = "bench", "bench-Pa55word"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--blackholed", type=float, default=0.3, help="share black-holed")
    parser.add_argument("--deadline", type=float, default=3.0, help="per-probe deadline, s")
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args()

    system = Actor.system()
    holes = round(args.accounts * args.blackholed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SmtpPeer(users={USER: PASSWORD}) as good,
        ScriptedPeer(Script(greeting=Silence())) as hole,
    ):
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            var_dir=Path(tmp),
            env="test",
            check_deadline_s=args.deadline,
        )
        container = build(settings)
        container.migrate()
        # Spread the black holes evenly, as a real fleet would have them.
        dead = {round(i * args.accounts / holes) for i in range(holes)} if holes else set()
        for i in range(args.accounts):
            peer = hole if i in dead else good
            outgoing = OutgoingDraft(
                host=peer.host,
                port=peer.port,
                security=Security.NONE,
                username=USER,
                password=PASSWORD,
                timeout_s=args.deadline,
            )
            container.accounts.create(
                system,
                AccountDraft(name=f"bench-{i}", email=f"b{i}@example.test", outgoing=outgoing),
            )
        started = time.monotonic()
        outcome = container.checks.check_all(system, args.concurrency)
        wall = time.monotonic() - started
        container.close()

    results = [r for _, rs in outcome for r in rs]
    timeouts = sum(r.error_class is ErrorClass.TIMEOUT for r in results)
    failed = sum(not r.ok for r in results)
    max_probe = max(sum(s.elapsed_ms for s in r.steps) for r in results) / 1000
    ratio = wall / args.deadline
    print(f"accounts         {len(outcome)} ({holes} black-holed, {timeouts} timed out)")
    print(f"failed probes    {failed} (expected {holes})")
    print(f"concurrency      {args.concurrency}")
    print(f"deadline         {args.deadline:g} s per probe (longest probe {max_probe:.2f} s)")
    print(f"wall time        {wall:.2f} s")
    print(f"ratio            {ratio:.2f} (target <= 2)")
    print(
        json.dumps(
            {
                "accounts": len(outcome),
                "blackholed": holes,
                "deadline_s": args.deadline,
                "wall_s": round(wall, 3),
                "ratio": round(ratio, 3),
                "concurrency": args.concurrency,
                "failed": failed,
                "max_probe_s": round(max_probe, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
