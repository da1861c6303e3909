"""A private Postfix for tests, and Postfix's smtp-sink / smtp-source test programs.

`PostfixServer` runs an isolated instance from its own config directory (`postfix -c DIR`) with
its own queue and data directories in a temporary directory. It listens on 127.0.0.1 ports
chosen at run time:

- `smtp`: plain SMTP, no TLS offered, no AUTH; loopback clients may relay;
- `submission`: STARTTLS required, then AUTH (SASL through Dovecot) required to send;
- `submissions`: implicit TLS (RFC 8314 wrapper mode), AUTH required.

Nothing leaves the machine: `default_transport`, `relay_transport` and `local_transport` are
`error:` transports, so smtpd refuses recipients in other domains at RCPT (550). Given a
Dovecot LMTP endpoint, the virtual domain (postroom.test) is delivered there, which makes the
round trip submit → Postfix → LMTP → IMAP possible. The system Postfix is neither needed nor
touched. Needs root (Postfix's master refuses to run otherwise).

`SmtpSink` wraps `smtp-sink`: it accepts everything, counts messages and (optionally) dumps
each one to a file so tests can count Message-IDs. `smtp_source_rate` times `smtp-source`.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Self

import trustme

from postroom.domain.accounts import Security
from postroom.testing.dovecot import DOMAIN
from postroom.testing.peer import (
    HOST,
    PeerEndpoint,
    PeerError,
    ServerProcess,
    TlsFiles,
    find_binary,
    free_ports,
    run,
    spawn,
    terminate,
    wait_closed,
    wait_listening,
)

_DAEMON_DIR = "/usr/lib/postfix/sbin"
_COUNTER_RE = re.compile(rb"mesg=(\d+)")


def postfix_available() -> str | None:
    """None when a private Postfix can run here, else the reason it cannot."""
    if find_binary("postfix") is None or not Path(_DAEMON_DIR, "master").exists():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return None


def smtp_sink_available() -> str | None:
    """None when Postfix's smtp-sink and smtp-source are installed, else the reason."""
    if find_binary("smtp-sink", _DAEMON_DIR) is None:
        return "smtp-sink is not installed (apt-get install postfix)"
    return None


@dataclass(frozen=True, slots=True)
class PostfixPorts:
    """The run-time ports of the three smtpd listeners."""

    smtp: int
    submission: int
    submissions: int


class PostfixServer(ServerProcess):
    """One private Postfix instance; a context manager, or call start() and stop().

    `sasl_auth` is Dovecot's auth listener (host, port) for `smtpd_sasl_type = dovecot`; without
    it the submission ports offer no AUTH and refuse every recipient. `lmtp` is Dovecot's LMTP
    listener; without it the virtual domain bounces like every other.
    """

    def __init__(
        self,
        *,
        sasl_auth: tuple[str, int] | None = None,
        lmtp: tuple[str, int] | None = None,
        domain: str = DOMAIN,
        ca: trustme.CA | None = None,
    ) -> None:
        reason = postfix_available()
        if reason is not None:
            raise PeerError(reason)
        self.host = HOST
        self.domain = domain
        self.dir = Path(tempfile.mkdtemp(prefix="postroom-postfix-"))
        self.dir.chmod(0o755)  # the daemons run as `postfix` after chdir into the queue
        self.config_dir = self.dir / "etc"
        self.config_dir.mkdir()
        (self.dir / "queue").mkdir()  # root-owned; Postfix creates what is inside
        self.log = self.dir / "postfix.log"
        self.tls = TlsFiles.issue(ca or trustme.CA(), self.dir)
        self.cafile = self.tls.cafile
        self.ports = PostfixPorts(*free_ports(3))
        self._sasl_auth = sasl_auth
        self._lmtp = lmtp
        self._process: subprocess.Popen[bytes] | None = None
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "master.cf").write_text(self._master_cf())

    def __repr__(self) -> str:
        return f"<PostfixServer {self.host} {self.ports}>"

    @property
    def sendmail_argv(self) -> list[str]:
        """A sendmail command line that submits into this instance (add `-t -i`)."""
        return [find_binary("sendmail") or "/usr/sbin/sendmail", "-C", str(self.config_dir)]

    def endpoint_values(self) -> dict[str, PeerEndpoint]:
        """Every listener: smtp (plain), submission (STARTTLS), submissions (implicit TLS)."""
        p = self.ports
        return {
            "smtp": PeerEndpoint(self.host, p.smtp, Security.NONE),
            "submission": PeerEndpoint(self.host, p.submission, Security.STARTTLS),
            "submissions": PeerEndpoint(self.host, p.submissions, Security.SSL),
        }

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Check the instance, start its master in the foreground, wait for the listeners."""
        if self._process is not None:
            return self
        # start-fg runs Postfix's own checks, creates the queue's subdirectories with the
        # ownership it wants, and keeps the master as our child so it can always be reaped.
        self._process = spawn([*self._postfix(), "start-fg"], self.log)
        try:
            wait_listening(self._all_ports(), self._process, self.log)
        except PeerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """`postfix -c DIR stop` (killing the master only if that fails), then remove the
        temporary directory. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                subprocess.run([*self._postfix(), "stop"], capture_output=True, check=False)
            terminate(process)
            wait_closed(self._all_ports(), timeout_s=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self) -> str:
        """Everything Postfix logged so far (maillog_file)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _postfix(self) -> list[str]:
        return [find_binary("postfix") or "postfix", "-c", str(self.config_dir)]

    def _all_ports(self) -> list[int]:
        return [self.ports.smtp, self.ports.submission, self.ports.submissions]

    # config ------------------------------------------------------------------------------

    def _main_cf(self) -> str:
        d = self.dir
        sasl = (
            f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:{self._sasl_auth[0]}:"
            f"{self._sasl_auth[1]}\n"
            if self._sasl_auth
            else ""
        )
        lmtp = (
            f"virtual_mailbox_domains = {self.domain}\n"
            f"virtual_transport = lmtp:inet:{self._lmtp[0]}:{self._lmtp[1]}\n"
            if self._lmtp
            else ""
        )
        return f"""\
# Generated by postroom.testing.postfix. Self-contained: nothing from /etc/postfix is used.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {self.log}
maillog_file_prefixes = {d}
myhostname = mx.{self.domain}
mydomain = {self.domain}
myorigin = $myhostname
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
# Nothing may leave the machine: every non-virtual destination ends in a local bounce.
default_transport = error:delivery outside the test domain is disabled
relay_transport = error:delivery outside the test domain is disabled
local_transport = error:local delivery disabled
{lmtp}
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
# Tests must not wait out Postfix's anti-abuse pauses after errors.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
{sasl}
smtpd_tls_chain_files = {self.tls.keyfile}, {self.tls.certfile}
smtpd_tls_security_level = none
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_session_cache_database =
smtpd_tls_loglevel = 0
"""

    def _master_cf(self) -> str:
        # Submission policy per RFC 6409 / RFC 8314: TLS first, then AUTH, then any recipient.
        auth = "yes" if self._sasl_auth else "no"
        submit = (
            f" -o smtpd_sasl_auth_enable={auth}"
            " -o smtpd_tls_auth_only=yes"
            " -o smtpd_client_restrictions="
            " -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
            " -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
        )
        p = self.ports
        return f"""\
# Generated by postroom.testing.postfix. No chroot: the daemons use the temporary directory.
{HOST}:{p.smtp} inet n - n - - smtpd
{HOST}:{p.submission} inet n - n - - smtpd -o syslog_name=postfix/submission \
-o smtpd_tls_security_level=encrypt{submit}
{HOST}:{p.submissions} inet n - n - - smtpd -o syslog_name=postfix/submissions \
-o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt{submit}
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class SmtpSink(ServerProcess):
    """Postfix's `smtp-sink` on a run-time loopback port: accepts every message.

    `count` is the number of messages received since start (or the last `clear()`), read from
    smtp-sink's running counter. With `dump=True` each message is also written to its own file
    so `message_ids()` can spot duplicates; that costs disk time, so benchmarks pass
    `dump=False`. `extra_args` go to smtp-sink as they are (e.g. `["-r", "RCPT"]` to answer
    RCPT with 4xx; see `man smtp-sink`).
    """

    def __init__(self, *, dump: bool = True, extra_args: Sequence[str] = ()) -> None:
        reason = smtp_sink_available()
        if reason is not None:
            raise PeerError(reason)
        self.host = HOST
        self.dir = Path(tempfile.mkdtemp(prefix="postroom-sink-"))
        self.dir.chmod(0o755)
        self.dump_dir: Path | None = self.dir / "messages" if dump else None
        self.port = free_ports(1)[0]
        self._extra_args = list(extra_args)
        self._output = self.dir / "counter.txt"
        self._process: subprocess.Popen[bytes] | None = None
        self._baseline = 0

    def __repr__(self) -> str:
        return f"<SmtpSink {self.host}:{self.port} dump={self.dump_dir is not None}>"

    @property
    def endpoint(self) -> PeerEndpoint:
        """Plain SMTP, no TLS, no AUTH."""
        return PeerEndpoint(self.host, self.port, Security.NONE)

    def start(self) -> Self:
        """Start smtp-sink and return once it accepts connections."""
        if self._process is not None:
            return self
        argv = [find_binary("smtp-sink", _DAEMON_DIR) or "smtp-sink", "-c", "-m", "1000"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # required under root; drops privileges after bind
        if self.dump_dir is not None:
            self.dump_dir.mkdir()
            _chown_nobody(self.dump_dir)
            # Dump files are opened O_EXCL, so a clash never overwrites; the strftime prefix
            # confines clashes of the 32-bit random suffix to messages of the same second.
            argv += ["-d", f"{self.dump_dir}/%Y%m%d%H%M%S."]
        argv += [*self._extra_args, f"{self.host}:{self.port}", "1024"]
        self._process = spawn(argv, self._output)
        try:
            wait_listening([self.port], self._process, self._output)
        except PeerError:
            self.stop()
            raise
        # The readiness probe was a session too; the counter only counts messages.
        return self

    def stop(self) -> None:
        """Stop smtp-sink (SIGTERM) and remove its directory. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            terminate(process)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def count(self) -> int:
        """Messages received (final "." seen) since start or the last clear()."""
        return self._total() - self._baseline

    def wait_for(self, count: int, timeout_s: float = 30.0) -> int:
        """Wait until at least `count` messages arrived; return the count (may be fewer when
        `timeout_s` ran out, so the caller's assertion shows the shortfall)."""
        deadline = time.monotonic() + timeout_s
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count

    def clear(self) -> None:
        """Start counting from zero and forget dumped messages (call while no client sends)."""
        self._baseline = self._total()
        if self.dump_dir is not None:
            for path in self.dump_dir.iterdir():
                path.unlink()

    def messages(self) -> list[EmailMessage]:
        """The dumped messages, oldest first (needs dump=True). smtp-sink prepends X-Client-*,
        X-Mail-Args, X-Rcpt-Args and a Received header to what the client sent."""
        if self.dump_dir is None:
            raise PeerError("SmtpSink(dump=False) keeps no messages")
        paths = sorted(self.dump_dir.iterdir(), key=lambda path: path.stat().st_mtime_ns)
        parse = email.message_from_bytes
        return [parse(path.read_bytes(), policy=email.policy.default) for path in paths]

    def message_ids(self) -> Counter[str]:
        """Message-ID → how many times it arrived (a value above 1 is a duplicate)."""
        return Counter(str(msg["Message-ID"]).strip() for msg in self.messages())

    def _total(self) -> int:
        if not self._output.exists():
            return 0
        with self._output.open("rb") as output:
            output.seek(max(0, output.seek(0, os.SEEK_END) - 200))
            found = _COUNTER_RE.findall(output.read())
        return int(found[-1]) if found else 0


def smtp_source_rate(
    port: int,
    *,
    host: str = HOST,
    count: int = 1000,
    size: int = 2048,
    sessions: int = 1,
    sender: str = "source@postroom.test",
    recipient: str = "sink@postroom.test",
) -> float:
    """Run `smtp-source` against host:port (each session reusing its connection, `-d`) and
    return the messages per second it achieved, process start included."""
    binary = find_binary("smtp-source", _DAEMON_DIR)
    if binary is None:
        raise PeerError("smtp-source is not installed (apt-get install postfix)")
    argv = [binary, "-d", "-s", str(sessions), "-m", str(count), "-l", str(size)]
    argv += ["-M", "localhost", "-f", sender, "-t", recipient, f"{host}:{port}"]
    started = time.monotonic()
    run(argv, timeout_s=600)
    return count / max(time.monotonic() - started, 1e-9)


def _chown_nobody(path: Path) -> None:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
