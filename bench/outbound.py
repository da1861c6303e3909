"""Outbound throughput against Postfix's smtp-sink on loopback, with 2 KB messages.

    .venv/bin/python bench/outbound.py [--count 20000]

Measures (a) a raw smtplib loop over one connection with the same bytes (best of three runs
spread over the bench, so machine load cannot flatter the ratios), (b) Postroom on
SQLite with one worker process, (c) Postroom on PostgreSQL with 4 worker processes (skipped
when 127.0.0.1:5432 does not answer), (d) django-post_office sending to the same sink
(installed into a throwaway venv under /tmp; run as its users run it, see PO_SCRIPT), and
smtp-source for reference; plus the bulk enqueue rate, the SQLite worker's RSS at start, once
a quarter of the mail is out (rss_warm_mb: SQLite's page cache, 2 MB per pooled connection,
fills during the first minutes and then stays) and at the end, and duplicates / lost mail.
Worker throughput is messages / (last sent_at - first attempt start), so process start-up is
not counted. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import smtplib
import subprocess
import sys
import tempfile
import textwrap
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security
from postroom.domain.outbox import Draft
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.storage.tables.outbox import outbox_attempts, outbox_messages
from postroom.testing.postfix import SmtpSink, smtp_source_rate
from postroom.wiring import build

BODY = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40)[:1700]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PO_VENV = Path(tempfile.gettempdir()) / "postroom-bench-post-office"


def two_kb_message() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bench@sender.test", "sink@dest.test", "bench"
    msg["Message-ID"] = "<raw@sender.test>"
    msg.set_content(BODY)
    return msg.as_bytes()


def raw_smtplib(port: int, count: int) -> float:
    raw = two_kb_message()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(count):
            smtp.sendmail("bench@sender.test", ["sink@dest.test"], raw)
    return count / (time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postroom_run(url: str, workers: int, count: int, sink: SmtpSink, var: Path) -> dict[str, Any]:
    """Enqueue `count` messages, drain them with `workers` processes, measure."""
    container = build(load_settings(database_url=url, var_dir=var, env="test"))
    container.migrate()
    system = Actor.system()
    account = container.accounts.create(
        system,
        AccountDraft(
            name=f"bench-{secrets.token_hex(3)}",
            email="bench@sender.test",
            outgoing=OutgoingDraft(
                host="127.0.0.1",
                port=sink.port,
                security=Security.NONE,
                auth_mode=AuthMode.NONE,
                max_messages_per_connection=1000,
                max_connections=8,
            ),
        ),
    )
    draft = Draft(to=("sink@dest.test",), subject="bench", text=BODY, account_id=account.id)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        container.outbox.submit_many(system, [draft] * min(1000, count - start))
    enqueue_mps = count / (time.perf_counter() - started)
    baseline = sink.count
    env = {
        **os.environ,
        "POSTROOM_DATABASE_URL": url,
        "POSTROOM_VAR_DIR": str(var),
        "POSTROOM_ENV": "test",
        "POSTROOM_WORKER_BATCH_SIZE": "250",
        "POSTROOM_WORKER_POLL_S": "0.05",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "postroom",
                "worker",
                "--name",
                f"bench-{n}",
                "--concurrency",
                "4",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    while sink.count == baseline:
        time.sleep(0.005)
    rss_start = rss_mb(procs[0].pid)
    rss_warm = None
    deadline = time.monotonic() + max(600, count / 50)
    while sink.count - baseline < count and time.monotonic() < deadline:
        if rss_warm is None and sink.count - baseline >= count // 4:
            rss_warm = rss_mb(procs[0].pid)
        time.sleep(0.05)
    time.sleep(0.5)  # let the last results commit
    rss_end = rss_mb(procs[0].pid)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)
    m, a = outbox_messages, outbox_attempts
    with container.engine.connect() as conn:
        ids = sa.select(m.c.id).where(m.c.account_id == account.id)
        sent = conn.execute(
            sa.select(sa.func.count()).where(m.c.account_id == account.id, m.c.status == "sent")
        ).scalar_one()
        first = conn.execute(
            sa.select(sa.func.min(a.c.started_at)).where(a.c.message_id.in_(ids))
        ).scalar_one()
        last = conn.execute(
            sa.select(sa.func.max(m.c.sent_at)).where(m.c.account_id == account.id)
        ).scalar_one()
    container.close()
    elapsed = max((last - first).total_seconds(), 1e-6)
    arrived = sink.count - baseline
    return {
        "mps": sent / elapsed,
        "enqueue_mps": enqueue_mps,
        "rss_start_mb": rss_start,
        "rss_warm_mb": rss_warm or rss_start,
        "rss_end_mb": rss_end,
        "duplicates": max(arrived - count, 0),
        "lost": count - sent,
    }


def fresh_pg_database() -> tuple[str, str] | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
            name = f"postroom_bench_{secrets.token_hex(4)}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL unavailable, skipping (c): {exc}", file=sys.stderr)
        return None
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# django-post_office as its users run it: mail.send_many() to queue, then its documented
# `manage.py send_queued_mail` command with every POST_OFFICE setting at its default (batches
# of 100, 5 threads per process, one process, LOG_LEVEL 2 = a log row per mail), Django's SMTP
# backend reused per thread within a batch as post_office does. Same sink and body; post_office
# builds its own MIME around it.
PO_SCRIPT = textwrap.dedent("""
    import json, sys, tempfile, time
    import django
    from django.conf import settings
    port, count = int(sys.argv[1]), int(sys.argv[2])
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                               "NAME": tempfile.mktemp(suffix=".db")}},
        EMAIL_BACKEND="post_office.EmailBackend",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, USE_TZ=True,
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    )
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from post_office import mail
    from post_office.models import Email
    body = sys.stdin.read()
    mail.send_many([dict(sender="bench@sender.test", recipients=["sink@dest.test"],
                         subject="bench", message=body) for _ in range(count)])
    started = time.perf_counter()
    call_command("send_queued_mail", lockfile=tempfile.mktemp())
    elapsed = time.perf_counter() - started
    sent = Email.objects.filter(status=0).count()
    print(json.dumps({"mps": sent / elapsed, "sent": sent}))
""")


def post_office(port: int, count: int) -> float | None:
    python = PO_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PO_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "django", "django-post-office"],
                check=True,
                timeout=600,
            )
        done = subprocess.run(
            [str(python), "-c", PO_SCRIPT, str(port), str(count)],
            input=BODY.encode(),
            capture_output=True,
            check=True,
            timeout=3600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"django-post_office run failed, skipping (d): {exc}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result["mps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp, SmtpSink(dump=False) as sink:
        var = Path(tmp)
        # The reference is timed three times (before, between and after the Postroom runs)
        # and its best run counts: on a loaded machine a single unlucky run would flatter us.
        raws = [raw_smtplib(sink.port, count)]
        print(f"(a) raw smtplib, one connection: {raws[-1]:,.0f} msg/s", flush=True)
        source_mps = smtp_source_rate(sink.port, count=count, size=2048)
        print(f"    smtp-source reference:       {source_mps:,.0f} msg/s", flush=True)
        lite = postroom_run(f"sqlite:///{var}/bench.db", 1, count, sink, var)
        print(
            f"(b) Postroom SQLite, 1 worker:   {lite['mps']:,.0f} msg/s "
            f"(enqueue {lite['enqueue_mps']:,.0f} msg/s, RSS {lite['rss_start_mb']:.0f} → "
            f"{lite['rss_end_mb']:.0f} MB)",
            flush=True,
        )
        raws.append(raw_smtplib(sink.port, count))
        print(f"(a) raw smtplib, again:          {raws[-1]:,.0f} msg/s", flush=True)
        pg_mps, pg = None, None
        created = fresh_pg_database()
        if created is not None:
            try:
                pg = postroom_run(created[0], 4, count, sink, var)
                pg_mps = pg["mps"]
                print(f"(c) Postroom PostgreSQL, 4 workers: {pg_mps:,.0f} msg/s", flush=True)
            finally:
                drop_pg_database(created[1])
        po_mps = post_office(sink.port, count)
        if po_mps is not None:
            print(
                f"(d) django-post_office:          {po_mps:,.0f} msg/s (send_many, then "
                "`send_queued_mail` with default POST_OFFICE settings: batches of 100, "
                "5 threads, log level 2)",
                flush=True,
            )
        raws.append(raw_smtplib(sink.port, count))
        raw_mps = max(raws)
        print(f"(a) raw smtplib, best of 3:      {raw_mps:,.0f} msg/s", flush=True)
    runs = [r for r in (lite, pg) if r is not None]
    figures = {
        "raw_smtplib_mps": round(raw_mps, 1),
        "sqlite_1w_mps": round(lite["mps"], 1),
        "pg_4w_mps": None if pg_mps is None else round(pg_mps, 1),
        "post_office_mps": None if po_mps is None else round(po_mps, 1),
        "smtp_source_mps": round(source_mps, 1),
        "ratio_vs_raw": round(lite["mps"] / raw_mps, 3),
        "ratio_vs_post_office": None if not po_mps else round(lite["mps"] / po_mps, 2),
        "enqueue_mps": round(lite["enqueue_mps"], 1),
        "rss_start_mb": round(lite["rss_start_mb"], 1),
        "rss_warm_mb": round(lite["rss_warm_mb"], 1),
        "rss_end_mb": round(lite["rss_end_mb"], 1),
        "duplicates": sum(r["duplicates"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
