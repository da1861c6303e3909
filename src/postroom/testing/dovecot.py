"""A private Dovecot 2.3 for tests: IMAP, IMAPS, POP3, POP3S, LMTP and a SASL auth service on
127.0.0.1 ports chosen at run time, passwd-file users with maildirs in a temporary directory.

Everything lives in one generated config file (`dovecot -c CONF`); nothing is included from
/etc/dovecot and nothing is written outside the temporary directory. The master process runs in
the foreground (`-F`) as our child so it can always be reaped; it is stopped with
`doveadm -c CONF stop`. It needs root: login processes run as `dovenull`, internal ones as
`dovecot`, and mail processes as `nobody` (the maildirs are chowned to it), never as root.

    with DovecotServer(users={"alice": "secret"}) as dovecot:
        dovecot.deliver("alice", raw)                  # LMTP
        uid = dovecot.append("alice", "INBOX", raw)    # IMAP APPEND, returns the UID
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import os
import pwd
import re
import secrets
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import trustme

from postroom.domain.accounts import Security
from postroom.errors import InvalidInput
from postroom.testing.peer import (
    HOST,
    PeerEndpoint,
    PeerError,
    ServerProcess,
    TlsFiles,
    find_binary,
    free_ports,
    spawn,
    terminate,
    wait_closed,
    wait_listening,
)

DOMAIN = "postroom.test"
_USER_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_STATUS_RE = re.compile(rb"(MESSAGES|RECENT|UIDNEXT|UIDVALIDITY|UNSEEN) (\d+)")


@dataclass(frozen=True, slots=True)
class DovecotPorts:
    """The run-time ports; IMAP and POP3 offer STARTTLS/STLS on their plain ports."""

    imap: int
    imaps: int
    pop3: int
    pop3s: int
    lmtp: int
    auth: int


def dovecot_available() -> str | None:
    """None when Dovecot (with IMAP, POP3 and LMTP) can run here, else the reason it cannot."""
    binary = find_binary("dovecot")
    if binary is None or find_binary("doveadm") is None:
        return (
            "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd)"
        )
    libexec = Path("/usr/lib/dovecot")
    missing = [name for name in ("imap", "pop3", "lmtp") if not (libexec / name).exists()]
    if missing:
        return f"Dovecot lacks {', '.join(missing)} (apt-get install dovecot-{missing[0]}d)"
    if os.geteuid() != 0:
        return "a private Dovecot instance needs root (it drops to dovenull/dovecot/nobody)"
    return None


def password_hash(password: str) -> str:
    """Dovecot's salted SHA-512 scheme, so the users file holds no clear passwords."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


class DovecotServer(ServerProcess):
    """One private Dovecot instance. Use as a context manager, or call start() and stop().

    Users can be added before or while it runs (each has a passwd-file of their own).
    Passwords are kept only so the helpers can log in; they never appear in repr.
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        domain: str = DOMAIN,
        ca: trustme.CA | None = None,
    ) -> None:
        reason = dovecot_available()
        if reason is not None:
            raise PeerError(reason)
        users = dict(users or {})
        for user, password in users.items():
            _check_user(user, password)
        self.host = HOST
        self.domain = domain
        self.dir = Path(tempfile.mkdtemp(prefix="postroom-dovecot-"))
        self.dir.chmod(0o755)  # the unprivileged mail and auth users must traverse it
        self.config = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self._users_dir = self.dir / "passwd"
        self._users_dir.mkdir()
        self._mail_root = self.dir / "mail"
        self._mail_root.mkdir()
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self.tls = TlsFiles.issue(ca or trustme.CA(), self.dir)
        self.cafile = self.tls.cafile
        self.ports = DovecotPorts(*free_ports(6))
        self._mail_user = _run_users()[2]
        self.config.write_text(self._render_config())
        for user, password in users.items():
            self.add_user(user, password)

    def __repr__(self) -> str:
        return f"<DovecotServer {self.host} {self.ports} users={sorted(self._passwords)}>"

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the master and return once every listener accepts connections."""
        if self._process is not None:
            return self
        binary = find_binary("dovecot") or "dovecot"
        self._process = spawn([binary, "-F", "-c", str(self.config)], self.log)
        try:
            wait_listening(self._all_ports(), self._process, self.log)
        except PeerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Dovecot with its own stop command (killing it only if that fails) and remove the
        temporary directory. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            # doveadm waits until the master's pid is gone, and an unreaped child stays a
            # zombie: so reap the master while doveadm runs, not after.
            doveadm = find_binary("doveadm") or "doveadm"
            stopper = subprocess.Popen(
                [doveadm, "-c", str(self.config), "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            terminate(process)
            terminate(stopper)
            wait_closed(self._all_ports(), timeout_s=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    # users -------------------------------------------------------------------------------

    @property
    def users(self) -> Mapping[str, str]:
        """user → password, for building test accounts (a copy)."""
        return dict(self._passwords)

    def password(self, user: str) -> str:
        """The password of `user` (KeyError when there is no such user)."""
        return self._passwords[user]

    def address(self, user: str) -> str:
        """The e-mail address that LMTP (and Postfix's virtual domain) delivers to `user`."""
        return f"{user}@{self.domain}"

    def add_user(self, user: str, password: str) -> None:
        """Add or re-key a user; their maildir is created, owned by the mail user."""
        _check_user(user, password)
        home = self._mail_root / user
        home.mkdir(exist_ok=True)
        os.chown(home, self._mail_user.pw_uid, self._mail_user.pw_gid)
        self._write_user(user, password)
        self._passwords[user] = password

    def _write_user(self, user: str, password: str) -> None:
        # One passwd-file per user (`args = .../%n`): Dovecot stats a passwd-file at most once
        # a second, so a user added to a shared file could stay unknown for up to a second; a
        # new file is read on first use (a changed password is seen within a second). Written
        # aside and renamed, so it is never read half-written.
        uid, gid = self._mail_user.pw_uid, self._mail_user.pw_gid
        target = self._users_dir / user
        scratch = target.with_suffix(".new")
        home = self._mail_root / user
        scratch.write_text(f"{user}:{password_hash(password)}:{uid}:{gid}::{home}::\n")
        scratch.chmod(0o644)
        scratch.replace(target)

    # endpoints ---------------------------------------------------------------------------

    def endpoint_values(self) -> dict[str, PeerEndpoint]:
        """Every service: imap, imap_starttls, imaps, pop3, pop3_starttls, pop3s, lmtp, auth."""
        p, plain, tls, ssl_ = self.ports, Security.NONE, Security.STARTTLS, Security.SSL
        return {
            name: PeerEndpoint(self.host, port, security)
            for name, port, security in (
                ("imap", p.imap, plain),
                ("imap_starttls", p.imap, tls),
                ("imaps", p.imaps, ssl_),
                ("pop3", p.pop3, plain),
                ("pop3_starttls", p.pop3, tls),
                ("pop3s", p.pop3s, ssl_),
                ("lmtp", p.lmtp, plain),
                ("auth", p.auth, plain),
            )
        }

    def _all_ports(self) -> list[int]:
        p = self.ports
        return [p.imap, p.imaps, p.pop3, p.pop3s, p.lmtp, p.auth]

    # mail helpers ------------------------------------------------------------------------

    def deliver(self, user: str, raw: bytes, *, sender: str = "sender@example.test") -> None:
        """Deliver `raw` to the user's INBOX over LMTP, as an MTA would (RFC 2033); a refusal
        raises smtplib.SMTPRecipientsRefused."""
        with smtplib.LMTP(self.host, self.ports.lmtp, timeout=30) as lmtp:
            lmtp.sendmail(sender, [self.address(user)], raw)

    def find_message(
        self, user: str, message_id: str, *, folder: str = "INBOX", timeout_s: float = 0.0
    ) -> bytes | None:
        """The raw message with this Message-ID in `folder`, polling up to `timeout_s` for it to
        arrive (e.g. through Postfix); None when it is not there."""
        deadline = time.monotonic() + timeout_s
        with self._imap(user) as imap:
            while True:
                imap.select(_quote(folder), readonly=True)
                typ, data = imap.uid("SEARCH", "HEADER", "Message-ID", _quote(message_id))
                uids = data[0].split() if typ == "OK" and isinstance(data[0], bytes) else []
                if uids:
                    typ, parts = imap.uid("FETCH", uids[0].decode(), "(BODY.PEEK[])")
                    return bytes(next(part[1] for part in parts if isinstance(part, tuple)))
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)

    def append(self, user: str, folder: str, raw: bytes, flags: Iterable[str] = ()) -> int:
        """IMAP APPEND `raw` to `folder` (created if missing) with `flags`; return its UID."""
        with self._imap(user) as imap:
            imap.create(_quote(folder))  # fails harmlessly when the folder exists
            typ, data = imap.append(_quote(folder), f"({' '.join(flags)})", None, raw)
        found = _APPENDUID_RE.search(b" ".join(d for d in data if isinstance(d, bytes)))
        if typ != "OK" or found is None:
            raise PeerError(f"APPEND to {folder} failed: {typ} {data!r}")
        return int(found.group(2))

    def create_folder(self, user: str, folder: str) -> None:
        """Create `folder`; a later delete and re-create gives it a new UIDVALIDITY."""
        self._command(user, "create", folder)

    def delete_folder(self, user: str, folder: str) -> None:
        """Delete `folder` and its messages (not INBOX: IMAP forbids that)."""
        self._command(user, "delete", folder)

    def folder_status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """STATUS of `folder`: MESSAGES, UIDNEXT, UIDVALIDITY and UNSEEN."""
        with self._imap(user) as imap:
            typ, data = imap.status(_quote(folder), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            raise PeerError(f"STATUS {folder} failed: {typ} {data!r}")
        return {key.decode(): int(value) for key, value in _STATUS_RE.findall(data[0])}

    def recent(self, user: str, folder: str = "INBOX") -> int:
        """How many messages of `folder` are still \\Recent: no session has SELECTed the folder
        since they arrived (STATUS itself takes nothing)."""
        with self._imap(user) as imap:
            typ, data = imap.status(_quote(folder), "(RECENT)")
        found = (
            _STATUS_RE.findall(data[0])
            if typ == "OK" and data and isinstance(data[0], bytes)
            else []
        )
        if not found:
            raise PeerError(f"STATUS {folder} (RECENT) failed: {typ} {data!r}")
        return int(found[0][1])

    def kick(self, user: str) -> None:
        """Disconnect the user's IMAP and POP3 sessions (`doveadm kick`), as a server restart
        or an idle timeout would."""
        doveadm = find_binary("doveadm") or "doveadm"
        done = subprocess.run(
            [doveadm, "-c", str(self.config), "kick", user], capture_output=True, check=False
        )
        if done.returncode not in (0, 68):  # 68 (EX_NOUSER): nobody to kick
            raise PeerError(f"doveadm kick {user} failed: {done.stderr.decode(errors='replace')}")

    def _command(self, user: str, verb: str, folder: str) -> None:
        with self._imap(user) as imap:
            typ, data = getattr(imap, verb)(_quote(folder))
        if typ != "OK":
            raise PeerError(f"{verb.upper()} {folder} failed: {data!r}")

    def _imap(self, user: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.ports.imap, timeout=30)
        imap.login(user, self._passwords[user])
        return imap

    # config ------------------------------------------------------------------------------

    def _render_config(self) -> str:
        login_user, internal_user, _ = _run_users()
        p, d = self.ports, self.dir
        return f"""\
# Generated by postroom.testing.dovecot. Self-contained: nothing from /etc/dovecot.
instance_name = postroom-{d.name}
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
protocols = imap pop3 lmtp
listen = {HOST}
hostname = {self.domain}
postmaster_address = postmaster@{self.domain}
default_login_user = {login_user.pw_name}
default_internal_user = {internal_user.pw_name}
mail_location = maildir:~/Maildir
mail_fsync = never
default_process_limit = 500
default_client_limit = 2000
mail_max_userip_connections = 500

ssl = yes
ssl_cert = <{self.tls.certfile}
ssl_key = <{self.tls.keyfile}
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = yes

# Plain-port tests need cleartext logins. Failures answer within ~0.5 s (the auth process
# flushes failures on a 500 ms timer; the default adds a 2 s delay on top).
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = {self._users_dir}/%n
}}
userdb {{
  driver = passwd-file
  args = {self._users_dir}/%n
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    special_use = \\Archive
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {p.imap}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {p.imaps}
    ssl = yes
  }}
  service_count = 0
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {p.pop3}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {p.pop3s}
    ssl = yes
  }}
  service_count = 0
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {p.lmtp}
  }}
}}
# Brute-force penalties (doubling delays per IP) would slow wrong-password tests to seconds.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# Postfix's smtpd_sasl_type = dovecot talks to this listener (smtpd_sasl_path = inet:...).
service auth {{
  inet_listener auth-client {{
    address = {HOST}
    port = {p.auth}
  }}
}}
"""


def _run_users() -> tuple[pwd.struct_passwd, pwd.struct_passwd, pwd.struct_passwd]:
    """(login, internal, mail) users: Dovecot's own unprivileged users, and `nobody` for mail."""
    try:
        return pwd.getpwnam("dovenull"), pwd.getpwnam("dovecot"), pwd.getpwnam("nobody")
    except KeyError as exc:
        raise PeerError(f"system user missing: {exc}; reinstall dovecot-core") from exc


def _check_user(user: str, password: str) -> None:
    """Refuse what would break a passwd-file line or a file name."""
    if not _USER_RE.fullmatch(user):
        raise InvalidInput(fields={"user": "use lower-case letters, digits, '.', '_', '-'"})
    if not password or any(ch in password for ch in ":\r\n"):
        raise InvalidInput(fields={"password": "must be non-empty, without ':' or line breaks"})


def _quote(folder: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3); imaplib leaves quoting to the caller."""
    if any(ch in folder for ch in "\r\n\0"):
        raise InvalidInput(fields={"folder": "cannot contain line breaks or NUL"})
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
