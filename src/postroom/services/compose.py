"""Building the MIME message once, at enqueue, with the account's stationery.

The bytes built here are stored and every (re-)send uses them unchanged, so the Message-ID fixed
here is what lets receivers de-duplicate an at-least-once re-send.
"""

from __future__ import annotations

import html as html_mod
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, getaddresses, make_msgid

from postroom.domain.accounts import Account
from postroom.domain.outbox import Draft
from postroom.errors import InvalidInput

_CONTENT = re.compile(r"\{\{\s*content\s*\}\}")


@dataclass(frozen=True, slots=True)
class Composed:
    raw: bytes
    message_id: str  # with angle brackets, as in the header
    envelope_from: str


def _mailbox(value: str) -> Address:
    name, address = getaddresses([value])[0]
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def apply_stationery(account: Account, text: str, html: str) -> tuple[str, str]:
    """Signature under the body (RFC 3676 §4.3 "-- " delimiter in text) and the letterhead
    around the HTML: `{{ content }}` in the letterhead marks where the body goes, else it is put
    above the body."""
    if text and account.signature_text:
        text = f"{text.rstrip()}\n\n-- \n{account.signature_text}"
    if html:
        if account.signature_html:
            html = f'{html}\n<div class="signature">{account.signature_html}</div>'
        elif account.signature_text:
            escaped = html_mod.escape(account.signature_text).replace("\n", "<br>")
            html = f'{html}\n<div class="signature">-- <br>{escaped}</div>'
        if account.letterhead_html:
            letterhead = account.letterhead_html
            html = (
                _CONTENT.sub(lambda _m: html, letterhead, count=1)
                if _CONTENT.search(letterhead)
                else f"{letterhead}\n{html}"
            )
    return text, html


def compose(draft: Draft, account: Account) -> Composed:
    """The complete message for `draft` sent through `account` (whose outgoing part is set).

    From defaults to the account's from address (or e-mail) and display name; Bcc recipients go
    in the envelope only, never in a header (RFC 5322 §3.6.3 allows either; hiding is the point).
    """
    out = account.outgoing
    sender = draft.from_address or (out.from_address if out else "") or account.email
    from_box = _mailbox(sender)
    if not draft.from_address and account.display_name:
        from_box = Address(account.display_name, from_box.username, from_box.domain)
    domain = from_box.domain or "postroom.invalid"
    message_id = make_msgid(domain=domain)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_box
    if draft.to:
        msg["To"] = [_mailbox(a) for a in draft.to]
    if draft.cc:
        msg["Cc"] = [_mailbox(a) for a in draft.cc]
    reply_to = draft.reply_to or (out.reply_to if out else "")
    if reply_to:
        msg["Reply-To"] = _mailbox(reply_to)
    msg["Subject"] = draft.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    for name, value in draft.headers:
        msg[name] = value
    text, html = apply_stationery(account, draft.text, draft.html)
    if text:
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html, subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    try:
        raw = msg.as_bytes()
    except (ValueError, TypeError) as exc:  # the email package refuses some header values
        raise InvalidInput(fields={"headers": f"cannot encode the message: {exc}"}) from exc
    return Composed(raw, message_id, from_box.addr_spec)
