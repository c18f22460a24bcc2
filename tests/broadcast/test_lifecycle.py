"""The notice lifecycle, transition by transition, without servers (the two-person rule too)."""

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.broadcast.cap import CapAlert
from services.broadcast.domain import (
    BroadcastError,
    Category,
    Certainty,
    MsgType,
    NoticeDraft,
    NoticeStatus,
    Severity,
    Targets,
    Urgency,
)
from services.broadcast.lifecycle import (
    CancelOriginal,
    Clock,
    CreateNotice,
    approve,
    cap_references,
    created,
    due,
    plan_stage,
    relay_cap,
    send_back,
    update_draft,
    withdrawal,
)
from shared.auth import Role, StaffUser
from tests.broadcast.builders import notice_body, stored_notice

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=VN).astimezone(UTC)
NIGHT = datetime(2026, 12, 4, 23, 0, tzinfo=VN).astimezone(UTC)
SIX = datetime(2026, 12, 5, 6, 0, tzinfo=VN).astimezone(UTC)
QUIET = (time(22, 0), time(6, 0))


def clock(now: datetime = NOON) -> Clock:
    return Clock(now, QUIET, VN)


def draft(**overrides: Any) -> NoticeDraft:
    return NoticeDraft.model_validate(notice_body(**overrides))


def staff(user_id: str, *roles: Role) -> StaffUser:
    return StaffUser(id=user_id, name=user_id, roles=frozenset(roles))


LATER = NOON + timedelta(hours=1)


class TestCreated:
    @pytest.mark.parametrize(
        ("held", "fields", "now", "status", "release_at"),
        [
            (True, {}, NOON, NoticeStatus.PENDING_APPROVAL, NOON),
            (False, {}, NOON, NoticeStatus.READY, NOON),
            (False, {"scheduled_at": LATER.isoformat()}, NOON, NoticeStatus.SCHEDULED, LATER),
            (False, {}, NIGHT, NoticeStatus.SCHEDULED, SIX),  # quiet hours
            (False, {"urgency": "Immediate"}, NIGHT, NoticeStatus.READY, NIGHT),
        ],
    )
    def test_first_status(
        self,
        held: bool,
        fields: dict[str, Any],
        now: datetime,
        status: NoticeStatus,
        release_at: datetime,
    ) -> None:
        start = created(draft(**fields), held, clock(now))
        assert (start.status, start.release_at) == (status, release_at)
        assert start.plan_now is (status == NoticeStatus.READY)

    def test_an_expired_notice_is_refused(self) -> None:
        with pytest.raises(BroadcastError):
            created(draft(expires_at=(NOON - timedelta(minutes=1)).isoformat()), False, clock())


class TestTwoPersonRule:
    HELD = stored_notice(status=NoticeStatus.PENDING_APPROVAL, created_by="u-editor")

    @pytest.mark.parametrize(
        ("notice_status", "approver", "refusal"),
        [
            (NoticeStatus.SCHEDULED, staff("u-approver", Role.APPROVER), 409),
            (NoticeStatus.DISPATCHED, staff("u-approver", Role.APPROVER), 409),
            (NoticeStatus.PENDING_APPROVAL, staff("u-editor", Role.APPROVER), 403),  # self
            (NoticeStatus.PENDING_APPROVAL, staff("u-officer", Role.OFFICER), 403),
            (NoticeStatus.PENDING_APPROVAL, staff("u-other", Role.EDITOR), 403),
        ],
    )
    def test_refused(self, notice_status: NoticeStatus, approver: StaffUser, refusal: int) -> None:
        notice = self.HELD.model_copy(update={"status": notice_status})
        with pytest.raises(BroadcastError) as refused:
            approve(notice, approver, clock())
        assert refused.value.status == refusal

    def test_the_creator_may_not_approve_even_as_admin(self) -> None:
        with pytest.raises(BroadcastError) as refused:
            approve(self.HELD, staff("u-editor", Role.ADMIN), clock())
        assert refused.value.status == 403

    @pytest.mark.parametrize(
        ("approver", "now", "status"),
        [
            (staff("u-approver", Role.APPROVER), NOON, NoticeStatus.READY),
            (staff("u-admin", Role.ADMIN), NOON, NoticeStatus.READY),
            (staff("u-approver", Role.APPROVER), NIGHT, NoticeStatus.SCHEDULED),
        ],
    )
    def test_released_by_a_second_person(
        self, approver: StaffUser, now: datetime, status: NoticeStatus
    ) -> None:
        assert approve(self.HELD, approver, clock(now)).status == status

    def test_an_expired_notice_is_not_approved(self) -> None:
        expired = self.HELD.model_copy(update={"expires_at": NOON - timedelta(seconds=1)})
        with pytest.raises(BroadcastError):
            approve(expired, staff("u-approver", Role.APPROVER), clock())


class TestSendBack:
    HELD = TestTwoPersonRule.HELD

    def test_a_second_approver_sends_it_back_with_the_reason(self) -> None:
        reason = send_back(self.HELD, staff("u-approver", Role.APPROVER), "  Sai địa chỉ\n phường ")
        assert reason == "Sai địa chỉ phường"

    @pytest.mark.parametrize(
        ("notice_status", "approver", "reason", "refusal"),
        [
            (NoticeStatus.PENDING_APPROVAL, staff("u-editor", Role.APPROVER), "Sai giờ", 403),
            (NoticeStatus.PENDING_APPROVAL, staff("u-other", Role.EDITOR), "Sai giờ", 403),
            (NoticeStatus.DISPATCHED, staff("u-approver", Role.APPROVER), "Sai giờ", 409),
            (NoticeStatus.PENDING_APPROVAL, staff("u-approver", Role.APPROVER), "  a ", 422),
        ],
    )
    def test_refused(
        self, notice_status: NoticeStatus, approver: StaffUser, reason: str, refusal: int
    ) -> None:
        notice = self.HELD.model_copy(update={"status": notice_status})
        with pytest.raises(BroadcastError) as refused:
            send_back(notice, approver, reason)
        assert refused.value.status == refusal


class TestScheduledAndFollowUps:
    @pytest.mark.parametrize(
        ("expires_at", "status"),
        [
            (None, NoticeStatus.READY),
            (NOON + timedelta(seconds=1), NoticeStatus.READY),
            (NOON, NoticeStatus.EXPIRED),
        ],
    )
    def test_due(self, expires_at: datetime | None, status: NoticeStatus) -> None:
        assert due(stored_notice(expires_at=expires_at), NOON) == status

    def test_plan_stage_of_an_approved_notice(self) -> None:
        assert plan_stage(stored_notice()) == ""
        assert plan_stage(stored_notice(approved_by="u-approver")) == "approved"

    def test_an_update_goes_to_the_original_targets(self) -> None:
        original = stored_notice(targets={"all_groups": True}, test_mode=True)
        update = update_draft(draft(targets={"wards": ["bac-ly"]}), original)
        assert (update.targets, update.test_mode) == (original.targets, True)
        with pytest.raises(BroadcastError) as refused:
            update_draft(draft(), stored_notice(status=NoticeStatus.SCHEDULED))
        assert refused.value.status == 409

    @pytest.mark.parametrize(
        ("was", "told"),
        [
            (NoticeStatus.READY, True),
            (NoticeStatus.DISPATCHED, True),
            (NoticeStatus.SCHEDULED, False),
            (NoticeStatus.PENDING_APPROVAL, False),
        ],
    )
    def test_a_withdrawal_tells_only_released_targets(self, was: NoticeStatus, told: bool) -> None:
        original = stored_notice()
        follow = withdrawal(original, was)
        assert (follow is not None) is told
        if follow is not None:
            assert follow.title == f"Thu hồi: {original.title}"
            assert original.verification_code in follow.body
            assert follow.urgency == Urgency.IMMEDIATE
            assert follow.targets == original.targets


def alert(**overrides: Any) -> CapAlert:
    values: dict[str, Any] = {
        "identifier": "A2",
        "sender": "kttv@example.vn",
        "sent": NOON,
        "status": "Actual",
        "msg_type": MsgType.ALERT,
        "references": (),
        "category": Category.OTHER,
        "event": "Bão số 5",
        "urgency": Urgency.EXPECTED,
        "severity": Severity.SEVERE,
        "certainty": Certainty.LIKELY,
        "headline": "Bão số 5\n  đổ bộ",
        "description": "Gió mạnh.",
        "instruction": "Ở trong nhà.",
        "expires": None,
        "areas": ("Phường Đồng Hải, TP Đồng Hới",),
        "tree": [],
    }
    return CapAlert(**(values | overrides))


class TestCapRelay:
    def test_references_name_sender_and_identifier(self) -> None:
        refs = ("kttv@example.vn,A1,2026-12-04T00:00:00+07:00", "bad")
        assert cap_references(alert(references=refs)) == ["kttv@example.vn,A1"]

    @pytest.mark.parametrize("status", ["System", "Draft"])
    def test_only_real_test_and_exercise_alerts_are_relayed(self, status: str) -> None:
        with pytest.raises(BroadcastError):
            relay_cap(alert(status=status), None, False)

    def test_a_new_alert(self) -> None:
        action = relay_cap(alert(), None, True)
        assert isinstance(action, CreateNotice)
        assert (action.msg_type, action.original) == (MsgType.ALERT, None)
        assert action.draft.targets == Targets(wards=["dong-hai"], followers=True)
        assert action.draft.title == "Bão số 5 đổ bộ"
        assert action.draft.idempotency_key == "cap:kttv@example.vn,A2"

    def test_an_alert_naming_no_ward_goes_to_every_group(self) -> None:
        action = relay_cap(alert(areas=("Tỉnh Quảng Bình",), status="Test"), None, False)
        assert isinstance(action, CreateNotice)
        assert action.draft.targets.all_groups
        assert action.draft.test_mode

    def test_cancel_of_a_relayed_alert_withdraws_it(self) -> None:
        original = stored_notice()
        assert relay_cap(alert(msg_type=MsgType.CANCEL), original, False) == CancelOriginal(
            original
        )

    @pytest.mark.parametrize(
        ("status", "msg_type", "keeps_original"),
        [
            (NoticeStatus.DISPATCHED, MsgType.UPDATE, True),
            (NoticeStatus.SCHEDULED, MsgType.ALERT, False),  # not sent yet: a new alert
        ],
    )
    def test_update_of_a_relayed_alert(
        self, status: NoticeStatus, msg_type: MsgType, keeps_original: bool
    ) -> None:
        original = stored_notice(status=status, targets={"wards": ["bac-ly"]})
        action = relay_cap(alert(msg_type=MsgType.UPDATE), original, False)
        assert isinstance(action, CreateNotice)
        assert action.msg_type == msg_type
        assert (action.original is original) is keeps_original
        assert action.draft.targets == original.targets
