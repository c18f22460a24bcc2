"""The sender's delivery state machine, transition by transition, without servers."""

from datetime import UTC, datetime, timedelta

import pytest

from services.broadcast.domain import DeliveryState, Notice, NoticeStatus
from services.broadcast.records import Attempt, Claim, Delivery, Echo, Outcome, Result
from services.broadcast.sender.decisions import (
    AskEchoConsumer,
    Finished,
    InDoubt,
    Policy,
    Resend,
    ResolveByEcho,
    SendFailure,
    TakeOver,
    Wait,
    awaiting_officer,
    before_send,
    echoed,
    failed,
    holder_to_check,
    on_doubt,
    resume,
    sent,
)
from tests.broadcast.builders import stored_notice

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
POLICY = Policy(
    claim_lease=20.0,
    echo_grace=15.0,
    max_attempts=3,
    retry_base_delay=1.0,
    retry_max_delay=60.0,
    manual_reminder_after=7200.0,
)
GROUP = Delivery("n1:g1", "n1", "g1", "group", "dong-hai", "oa", "Tổ 1", code="CA-ABC123")


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def claim(worker: str = "w1", created: float = 1.0, k: int = 1) -> Claim:
    return Claim(GROUP.id, GROUP.notice_id, k, worker, ago(created))


def result(outcome: Outcome, k: int = 1) -> Result:
    return Result.of(GROUP, k, outcome, ago(1))


PENDING = Outcome(DeliveryState.PENDING)
RETRY_LATER = Outcome(DeliveryState.PENDING, not_before=NOW + timedelta(seconds=3))
RETRY_DUE = Outcome(DeliveryState.PENDING, not_before=ago(1))
DOUBT = Outcome(DeliveryState.PENDING, not_before=ago(5), doubt=True, doubt_at=ago(5))


class TestResume:
    @pytest.mark.parametrize(
        ("attempt", "holder_alive_until", "step"),
        [
            pytest.param(Attempt(0, None, None, None), None, TakeOver(), id="never-claimed"),
            *[
                pytest.param(
                    Attempt(1, claim(), result(Outcome(state)), None), None, Finished(), id=state
                )
                for state in (
                    DeliveryState.SENT,
                    DeliveryState.FAILED,
                    DeliveryState.CANCELLED,
                    DeliveryState.AWAITING_CONFIRMATION,
                )
            ],
            pytest.param(
                Attempt(1, claim(), result(RETRY_LATER), None), None, Wait(3.0), id="retry-later"
            ),
            pytest.param(
                Attempt(1, claim(), result(RETRY_DUE), None), None, TakeOver(), id="retry-due"
            ),
            pytest.param(
                Attempt(1, claim(), result(PENDING), None), None, TakeOver(), id="pending-no-time"
            ),
            pytest.param(
                Attempt(1, claim(), result(DOUBT), None), None, InDoubt(ago(5)), id="doubt"
            ),
            pytest.param(
                Attempt(1, claim(), None, None), NOW + timedelta(seconds=5), Wait(10.0), id="live"
            ),
            pytest.param(
                Attempt(1, claim(), None, None), ago(3), InDoubt(ago(3)), id="holder-died"
            ),
            pytest.param(
                Attempt(1, claim(created=30), None, None),
                None,
                InDoubt(ago(30)),
                id="holder-never-beat",
            ),
            pytest.param(
                Attempt(1, claim("cancel", created=5), None, None), None, Wait(10.0), id="cancel"
            ),
            pytest.param(
                Attempt(1, claim("cancel", created=25), None, None),
                None,
                TakeOver(),
                id="cancel-died",
            ),
            pytest.param(
                Attempt(1, claim("confirm", created=25), None, None),
                None,
                TakeOver(),
                id="confirm-died",
            ),
            pytest.param(
                Attempt(1, claim("echo", created=25), None, None),
                None,
                InDoubt(ago(25)),
                id="echo-died",
            ),
        ],
    )
    def test_where_a_tried_delivery_goes(
        self, attempt: Attempt, holder_alive_until: datetime | None, step: object
    ) -> None:
        assert resume(attempt, NOW, holder_alive_until, POLICY) == step

    @pytest.mark.parametrize(
        ("attempt", "holder"),
        [
            (Attempt(1, claim("w7"), None, None), "w7"),
            (Attempt(1, claim("cancel"), None, None), None),
            (Attempt(1, claim("w7"), result(PENDING), None), None),
            (Attempt(0, None, None, None), None),
        ],
    )
    def test_liveness_is_read_only_for_an_open_send(
        self, attempt: Attempt, holder: str | None
    ) -> None:
        assert holder_to_check(attempt) == holder


class TestDoubt:
    @pytest.mark.parametrize(
        ("echoed_kind", "echo_seen", "waited", "caught_up", "step"),
        [
            (True, True, 1.0, None, ResolveByEcho()),
            (True, True, 100.0, True, ResolveByEcho()),
            (True, False, 5.0, None, Wait(10.0)),
            (True, False, 14.9, None, Wait(0.5)),
            (True, False, 15.0, None, AskEchoConsumer()),
            (True, False, 20.0, False, Wait(3.75)),
            (True, False, 20.0, True, Resend()),
            (True, False, 60.0, None, Resend()),  # a backlog is waited out up to 4 graces
            (False, False, 5.0, None, Wait(10.0)),
            (False, False, 15.0, None, Resend()),  # no echo comes for this kind of post
        ],
    )
    def test_an_attempt_in_doubt(
        self,
        echoed_kind: bool,
        echo_seen: bool,
        waited: float,
        caught_up: bool | None,
        step: object,
    ) -> None:
        assert on_doubt(echoed_kind, echo_seen, waited, caught_up, POLICY) == step

    def test_only_oa_group_posts_are_echoed(self) -> None:
        assert GROUP.is_echoed
        manual = Delivery("n1:g2", "n1", "g2", "group", channel="manual")
        followers = Delivery("n1:f", "n1", "followers", "followers", channel="broadcast")
        assert not manual.is_echoed
        assert not followers.is_echoed

    def test_an_echo_records_the_delivery_sent(self) -> None:
        outcome = echoed(Echo("g1", "CA-ABC123", "m9"), NOW)
        assert outcome == Outcome(
            DeliveryState.SENT, sent_at=NOW, resolved_by="echo", zalo_message_id="m9"
        )


def notice(status: NoticeStatus = NoticeStatus.DISPATCHED, expires: float | None = None) -> Notice:
    expires_at = NOW + timedelta(seconds=expires) if expires is not None else None
    return stored_notice(status=status, expires_at=expires_at)


class TestBeforeSend:
    @pytest.mark.parametrize(
        ("current", "holds_lease", "state", "error", "nak"),
        [
            (notice(), False, DeliveryState.PENDING, "claim lease ran out before sending", 0.2),
            (None, True, DeliveryState.CANCELLED, None, None),
            (notice(NoticeStatus.CANCELLED), True, DeliveryState.CANCELLED, None, None),
            (notice(expires=-1), True, DeliveryState.CANCELLED, "expired", None),
        ],
    )
    def test_what_must_not_go_out(
        self,
        current: Notice | None,
        holds_lease: bool,
        state: DeliveryState,
        error: str | None,
        nak: float | None,
    ) -> None:
        verdict = before_send(current, NOW, holds_lease)
        assert verdict is not None
        assert (verdict.outcome.state, verdict.outcome.last_error) == (state, error)
        assert verdict.nak_delay == nak
        assert verdict.publish is (state == DeliveryState.CANCELLED)

    def test_a_live_notice_goes_out(self) -> None:
        assert before_send(notice(expires=60), NOW, True) is None


class TestVerdicts:
    def test_sent(self) -> None:
        verdict = sent("m1", NOW)
        assert verdict.outcome == Outcome(DeliveryState.SENT, sent_at=NOW, zalo_message_id="m1")
        assert (verdict.nak_delay, verdict.dead_error, verdict.publish) == (None, None, True)

    def test_awaiting_the_officer(self) -> None:
        verdict = awaiting_officer("m2", NOW, POLICY)
        assert verdict.outcome.state == DeliveryState.AWAITING_CONFIRMATION
        assert verdict.outcome.next_action_at == NOW + timedelta(hours=2)
        assert (verdict.outcome.reminders, verdict.publish) == (0, True)

    @pytest.mark.parametrize(
        ("failure", "before", "state", "failures", "nak", "dead", "doubt"),
        [
            pytest.param(
                SendFailure("HTTP 500", True, maybe_delivered=True),
                0,
                DeliveryState.PENDING,
                1,
                15.0,
                False,
                True,
                id="maybe-delivered",
            ),
            pytest.param(
                SendFailure("HTTP 500", True, maybe_delivered=True),
                2,
                DeliveryState.FAILED,
                3,
                None,
                True,
                False,
                id="maybe-delivered-last-attempt",
            ),
            pytest.param(
                SendFailure("rate", True, rate_limited=True, retry_after=7.0),
                2,
                DeliveryState.PENDING,
                None,
                7.0,
                False,
                False,
                id="rate-limited-not-counted",
            ),
            pytest.param(
                SendFailure("rate", True, rate_limited=True),
                0,
                DeliveryState.PENDING,
                None,
                1.0,
                False,
                False,
                id="rate-limited-default-pause",
            ),
            pytest.param(
                SendFailure("-403", False),
                0,
                DeliveryState.FAILED,
                1,
                None,
                True,
                False,
                id="permanent",
            ),
            pytest.param(
                SendFailure("HTTP 503", True),
                1,
                DeliveryState.PENDING,
                2,
                2.0,
                False,
                False,
                id="retry-with-backoff",
            ),
            pytest.param(
                SendFailure("HTTP 503", True),
                2,
                DeliveryState.FAILED,
                3,
                None,
                True,
                False,
                id="attempt-bound",
            ),
        ],
    )
    def test_a_failed_attempt(
        self,
        failure: SendFailure,
        before: int,
        state: DeliveryState,
        failures: int | None,
        nak: float | None,
        dead: bool,
        doubt: bool,
    ) -> None:
        verdict = failed(failure, before, NOW, POLICY)
        outcome = verdict.outcome
        assert (outcome.state, outcome.failures, verdict.nak_delay) == (state, failures, nak)
        assert outcome.last_error == failure.error
        assert (verdict.dead_error == failure.error) is dead
        assert verdict.publish is dead
        assert outcome.doubt is doubt
        if state == DeliveryState.PENDING and not doubt:
            assert outcome.not_before == NOW + timedelta(seconds=nak or 0)


class TestResultDocuments:
    def test_a_result_keeps_the_failures_before_it_unless_the_outcome_counts_one(self) -> None:
        kept = Result.of(GROUP, 2, Outcome(DeliveryState.SENT), NOW, failures=1, worker="w1")
        counted = Result.of(GROUP, 2, Outcome(DeliveryState.PENDING, failures=2), NOW, 1)
        assert (kept.failures, counted.failures) == (1, 2)
        assert Result.from_doc(kept.to_doc(), GROUP) == kept

    def test_a_manual_result_carries_the_delivery(self) -> None:
        manual = Delivery("n1:g2", "n1", "g2", "group", "dong-hai", "manual", officer_id="42")
        stored = Result.of(manual, 1, Outcome(DeliveryState.AWAITING_CONFIRMATION), NOW)
        assert Result.from_doc(stored.to_doc()) == stored
        assert "target" not in Result.of(GROUP, 1, Outcome(DeliveryState.SENT), NOW).to_doc()
