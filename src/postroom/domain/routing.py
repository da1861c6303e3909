"""Which account sends a message, decided step by step so the answer can be explained.

Order (seed 004, then the seeds' team and system defaults):
  0. the account the caller named, if any — it must be usable, there is no silent fallback;
  1. an account linked to the sender's current work location;
  2. the default outgoing account of one of the sender's teams (lowest team id first);
  3. the system-wide default outgoing account.
An account is usable only when it is active and has an outgoing part; inactive and deleted
accounts are skipped with the reason written into the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.domain.accounts import AccountStatus


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """What routing needs to know about one account."""

    id: int
    name: str
    status: AccountStatus
    team_id: int | None
    is_default_outgoing: bool
    has_outgoing: bool
    work_location_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Sender:
    user_id: int | None
    email: str
    team_ids: tuple[int, ...] = ()
    work_location_id: int | None = None


@dataclass(frozen=True, slots=True)
class RouteStep:
    rule: str  # requested | work_location | team_default | system_default
    outcome: str  # chosen | skipped | no_match
    detail: str
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    account_id: int | None
    account_name: str
    steps: tuple[RouteStep, ...]

    @property
    def explanation(self) -> str:
        return "; ".join(f"{s.rule}: {s.detail}" for s in self.steps)


def unusable_reason(candidate: RouteCandidate) -> str | None:
    """Why `candidate` cannot send, or None when it can."""
    if candidate.status is not AccountStatus.ACTIVE:
        return f"account {candidate.name!r} is {candidate.status.value}"
    if not candidate.has_outgoing:
        return f"account {candidate.name!r} has no outgoing server"
    return None


def decide_route(
    sender: Sender,
    candidates: list[RouteCandidate],
    requested_id: int | None = None,
) -> RouteDecision:
    """The account to use for `sender` among `candidates` (accounts visible to the sender).

    Returns account_id None when nothing is usable; the steps say why at each rule.
    """
    steps: list[RouteStep] = []
    by_id = {c.id: c for c in candidates}

    def pick(rule: str, found: list[RouteCandidate], what: str) -> RouteDecision | None:
        if not found:
            steps.append(RouteStep(rule, "no_match", f"no account for {what}"))
            return None
        for candidate in sorted(found, key=lambda c: c.id):
            reason = unusable_reason(candidate)
            if reason is None:
                steps.append(
                    RouteStep(rule, "chosen", f"{candidate.name!r} for {what}", candidate.id)
                )
                return RouteDecision(candidate.id, candidate.name, tuple(steps))
            steps.append(RouteStep(rule, "skipped", reason, candidate.id))
        return None

    if requested_id is not None:
        requested = by_id.get(requested_id)
        if requested is None:
            steps.append(RouteStep("requested", "no_match", f"account {requested_id} not found"))
            return RouteDecision(None, "", tuple(steps))
        # A named account is never replaced by another: the caller asked for that one.
        return pick("requested", [requested], "the requested account") or RouteDecision(
            None, "", tuple(steps)
        )

    if sender.work_location_id is None:
        steps.append(RouteStep("work_location", "no_match", "sender has no current work location"))
    else:
        at_location = [c for c in candidates if sender.work_location_id in c.work_location_ids]
        location = f"work location {sender.work_location_id}"
        if decision := pick("work_location", at_location, location):
            return decision

    if not sender.team_ids:
        steps.append(RouteStep("team_default", "no_match", "sender belongs to no team"))
    for team_id in sorted(sender.team_ids):
        defaults = [c for c in candidates if c.is_default_outgoing and c.team_id == team_id]
        if decision := pick("team_default", defaults, f"team {team_id}'s default"):
            return decision

    system = [c for c in candidates if c.is_default_outgoing and c.team_id is None]
    if decision := pick("system_default", system, "the system default"):
        return decision
    return RouteDecision(None, "", tuple(steps))
