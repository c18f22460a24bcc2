"""The sender's delivery state machine as plain functions: no awaits, no driver exceptions.

The worker (`worker.py`) loads what a decision needs, calls it, and performs what it returns:

- `resume`: a delivery somebody has tried already is finished (re-publish its outcome), waits
  (a retry time, a live holder), is in doubt (its holder died mid-send, or Zalo answered
  "maybe delivered"), or is taken over (claim the next attempt);
- `on_doubt`: an attempt in doubt is resolved by Zalo's echo of the post; without one it is
  sent again only after `echo_grace` *and* once the echo consumer has caught up with every
  echo stored so far (waited out up to ECHO_BACKLOG_GRACES graces);
- `before_send`: a claimed attempt of a cancelled or expired notice, or one whose worker lost
  its lease, sends nothing;
- `sent`, `awaiting_officer`, `failed`, `echoed`: what an attempt came to (its `Verdict`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.broadcast.domain import DeliveryState, Notice, NoticeStatus, retry_delay
from services.broadcast.records import SENDS_NOTHING, Attempt, Echo, Outcome

# An in-doubt send waits for a backlog of echoes up to this many graces, then goes out anyway
# (an echo consumer that is down must not hold deliveries forever).
ECHO_BACKLOG_GRACES = 4
MIN_WAIT = 0.5  # seconds: the shortest redelivery delay while waiting on somebody else


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the decisions read (seconds and counts)."""

    claim_lease: float
    echo_grace: float
    max_attempts: int
    retry_base_delay: float
    retry_max_delay: float
    manual_reminder_after: float


# --- following a delivery somebody has tried already ----------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    """Attempt k is over and final: re-publish its outcome (its worker may have died first)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Answer NATS with a delayed redelivery."""

    delay: float


@dataclass(frozen=True, slots=True)
class InDoubt:
    """Attempt k may have reached Zalo; `on_doubt` says what to do."""

    since: datetime


@dataclass(frozen=True, slots=True)
class TakeOver:
    """Claim attempt k+1 and send it."""


ResumeStep = Finished | Wait | InDoubt | TakeOver


def holder_to_check(attempt: Attempt) -> str | None:
    """The worker whose liveness `resume` needs (an open attempt held by a sender), or None."""
    claim = attempt.claim
    if attempt.result is None and claim is not None and not claim.is_bookkeeping:
        return claim.worker
    return None


def resume(
    attempt: Attempt, now: datetime, holder_alive_until: datetime | None, policy: Policy
) -> ResumeStep:
    """Where a redelivered (or lost-claim) delivery goes next. `holder_alive_until`: the
    liveness of the worker `holder_to_check` named (None: unknown or not asked)."""
    result, claim = attempt.result, attempt.claim
    if result is not None:  # attempt k is over
        if result.state != DeliveryState.PENDING:
            return Finished()
        not_before = result.outcome.not_before
        if not_before is not None and not_before > now:
            return Wait(max(0.2, (not_before - now).total_seconds()))
        if result.outcome.doubt and result.outcome.doubt_at is not None:
            return InDoubt(result.outcome.doubt_at)
        return TakeOver()
    if claim is None:  # nobody claimed any attempt
        return TakeOver()
    # Attempt k is open.
    lease = timedelta(seconds=policy.claim_lease)
    if claim.is_bookkeeping:
        # A cancel, confirmation or echo resolution gets its result at once; one left without
        # a result for a whole lease (its writer crashed) is taken over.
        if now - claim.created_at <= lease:
            return Wait(max(MIN_WAIT, policy.claim_lease / 2))
        since = claim.created_at
    elif holder_alive_until is not None and holder_alive_until > now:
        return Wait(max(MIN_WAIT, policy.claim_lease / 2))  # its holder is working on it
    else:
        since = holder_alive_until if holder_alive_until is not None else claim.created_at
    # A cancel or confirmation that died half-way sent nothing: no doubt. Every other open
    # attempt (an echo resolution too) goes through the echo check.
    return TakeOver() if claim.worker in SENDS_NOTHING else InDoubt(since)


# --- an attempt in doubt ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolveByEcho:
    """The echo proves the post went out: attempt k+1 records it sent (nothing is sent)."""


@dataclass(frozen=True, slots=True)
class AskEchoConsumer:
    """Wait (up to a grace) for the echo consumer to record every stored echo, read the echo
    again, and decide again with `caught_up`."""


@dataclass(frozen=True, slots=True)
class Resend:
    """No echo will come: send again."""


DoubtStep = ResolveByEcho | Wait | AskEchoConsumer | Resend


def on_doubt(
    echoed: bool,
    echo_seen: bool,
    waited: float,
    caught_up: bool | None,
    policy: Policy,
) -> DoubtStep:
    """An attempt in doubt for `waited` seconds. `echoed`: Zalo echoes this kind of post;
    `echo_seen`: an echo of it is recorded; `caught_up`: whether the echo consumer has
    recorded every echo stored so far (None: not asked yet)."""
    if echoed and echo_seen:
        return ResolveByEcho()
    grace = policy.echo_grace
    if waited < grace:
        return Wait(max(MIN_WAIT, grace - waited))
    if echoed and waited < ECHO_BACKLOG_GRACES * grace:
        if caught_up is None:
            return AskEchoConsumer()
        if not caught_up:
            return Wait(max(MIN_WAIT, grace / 4))
    return Resend()


# --- what an attempt came to -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one attempt (its result's fields) and how to answer NATS."""

    outcome: Outcome
    nak_delay: float | None = None  # None = ack
    dead_error: str | None = None  # publish a dead letter with this error
    publish: bool = False  # publish an outcome event


@dataclass(frozen=True, slots=True)
class SendFailure:
    """A Zalo call that failed, as the decisions need it (no exception objects here)."""

    error: str
    retryable: bool
    maybe_delivered: bool = False  # Zalo may have posted before failing
    rate_limited: bool = False
    retry_after: float | None = None


def before_send(notice: Notice | None, now: datetime, holds_lease: bool) -> Verdict | None:
    """A claimed attempt that must not go to Zalo, or None to send it."""
    if not holds_lease:
        # Our lease may have run out (a stalled process): another worker may take this
        # attempt over after the echo grace, so we must not send. Nothing was sent.
        lapsed = "claim lease ran out before sending"
        return Verdict(Outcome(DeliveryState.PENDING, last_error=lapsed, not_before=now), 0.2)
    if notice is None or notice.status == NoticeStatus.CANCELLED:
        return Verdict(Outcome(DeliveryState.CANCELLED, finished_at=now), publish=True)
    if notice.expires_at is not None and notice.expires_at <= now:
        expired = Outcome(DeliveryState.CANCELLED, last_error="expired", finished_at=now)
        return Verdict(expired, publish=True)
    return None


def sent(message_id: str | None, now: datetime) -> Verdict:
    """Zalo took the post (a group's, or the followers' broadcast)."""
    return Verdict(
        Outcome(DeliveryState.SENT, sent_at=now, zalo_message_id=message_id), publish=True
    )


def awaiting_officer(officer_message_id: str | None, now: datetime, policy: Policy) -> Verdict:
    """A manual group's officer got the text to post; a reminder follows if nobody confirms."""
    due = now + timedelta(seconds=policy.manual_reminder_after)
    outcome = Outcome(
        DeliveryState.AWAITING_CONFIRMATION,
        officer_message_id=officer_message_id,
        notified_at=now,
        next_action_at=due,
        reminders=0,
    )
    return Verdict(outcome, publish=True)


def failed(failure: SendFailure, failed_before: int, now: datetime, policy: Policy) -> Verdict:
    """A failed attempt: doubt, a rate-limit pause, a retry with backoff, or a dead letter."""
    failures = failed_before + 1
    error = failure.error
    if failure.maybe_delivered and failures < policy.max_attempts:
        # Zalo may have posted: the next attempt goes through the echo check first.
        doubt = Outcome(
            DeliveryState.PENDING,
            failures=failures,
            last_error=error,
            not_before=now,
            doubt=True,
            doubt_at=now,
        )
        return Verdict(doubt, policy.echo_grace)
    if failure.rate_limited:  # not counted as a failure
        delay = failure.retry_after or policy.retry_base_delay
        later = now + timedelta(seconds=delay)
        return Verdict(Outcome(DeliveryState.PENDING, last_error=error, not_before=later), delay)
    if not failure.retryable or failures >= policy.max_attempts:
        dead = Outcome(DeliveryState.FAILED, failures=failures, last_error=error, finished_at=now)
        return Verdict(dead, dead_error=error, publish=True)
    delay = retry_delay(failures, policy.retry_base_delay, policy.retry_max_delay)
    later = now + timedelta(seconds=delay)
    retry = Outcome(DeliveryState.PENDING, failures=failures, last_error=error, not_before=later)
    return Verdict(retry, delay)


def echoed(echo: Echo, now: datetime) -> Outcome:
    """The result an echo of the post records (attempt k+1, nothing sent)."""
    return Outcome(
        DeliveryState.SENT, sent_at=now, resolved_by="echo", zalo_message_id=echo.message_id
    )
