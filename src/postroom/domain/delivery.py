"""SMTP replies as delivery decisions: reply classes, RFC 3463 enhanced status codes, and the
result for one recipient. Pure: the retry policy and the delivery service build on these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ReplyClass(StrEnum):
    """What a final SMTP reply means for the message (RFC 5321 §4.2.1)."""

    SUCCESS = "success"  # 2xx: the server took responsibility
    TRANSIENT = "transient"  # 4xx: try again later
    PERMANENT = "permanent"  # 5xx: do not retry this recipient


def classify_reply(code: int) -> ReplyClass:
    """The class of a final reply `code` (100..599).

    1xx and 3xx make no sense as a final answer; they are treated as transient, because a
    confused server is a reason to try again later, never a reason to drop mail.
    """
    if not 100 <= code <= 599:
        raise ValueError(f"not an SMTP reply code: {code}")
    if 200 <= code < 300:
        return ReplyClass.SUCCESS
    if code >= 500:
        return ReplyClass.PERMANENT
    return ReplyClass.TRANSIENT


# RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5; subject and detail 1-3 digits.
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def parse_enhanced_status(text: str) -> str | None:
    """The enhanced status code ("5.1.1") opening a reply's text, or None when it has none."""
    match = _ENHANCED.match(text)
    return ".".join(match.groups()) if match else None


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The final answer for one recipient.

    `stage` says which command produced it: "mail" (MAIL FROM refused the whole envelope),
    "rcpt" (the recipient was refused, or accepted but the message was not sent),
    or "data" (the answer to the message itself after the final ".").
    """

    address: str
    code: int
    text: str
    stage: str = "rcpt"
    enhanced_status: str | None = None

    @property
    def reply_class(self) -> ReplyClass:
        return classify_reply(self.code)

    @classmethod
    def from_reply(cls, address: str, code: int, text: str, stage: str) -> RecipientResult:
        return cls(address, code, text, stage, parse_enhanced_status(text))


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply (multi-line replies joined with newlines)."""

    code: int
    text: str

    @property
    def reply_class(self) -> ReplyClass:
        return classify_reply(self.code)

    @property
    def enhanced_status(self) -> str | None:
        return parse_enhanced_status(self.text)
