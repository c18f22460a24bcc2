"""Which waiting manual groups a ward officer sees in the console, and the draft preview."""

from datetime import UTC, datetime

import pytest

from services.broadcast.domain import DeliveryState, NoticeDraft
from services.broadcast.forwarding import PREVIEW_CODE, officer_sees, preview
from services.broadcast.records import Delivery, DeliveryView, Outcome, Result
from shared.auth import Role, StaffUser
from tests.broadcast.builders import notice_body

NOW = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)


def view(
    channel: str = "manual",
    ward: str | None = "bao-ninh",
    state: DeliveryState = DeliveryState.AWAITING_CONFIRMATION,
) -> DeliveryView:
    delivery = Delivery("d1", "n1", "g1", "group", ward=ward, channel=channel, group_name="Thôn 10")
    return DeliveryView(delivery, Result.of(delivery, 1, Outcome(state), NOW, 0))


def staff(*roles: Role, wards: frozenset[str] = frozenset()) -> StaffUser:
    return StaffUser(id="u1", name="u1", roles=frozenset(roles), wards=wards)


@pytest.mark.parametrize(
    ("seen", "user", "shown"),
    [
        (view(), staff(Role.OFFICER, wards=frozenset({"bao-ninh"})), True),
        (view(), staff(Role.OFFICER, wards=frozenset({"duc-ninh"})), False),  # another ward
        (view(), staff(Role.OFFICER), False),  # an officer without wards serves no group
        (view(), staff(Role.DISPATCHER, wards=frozenset({"bao-ninh"})), False),
        (view(), staff(Role.ADMIN), True),
        (view(channel="oa"), staff(Role.OFFICER, wards=frozenset({"bao-ninh"})), False),
        (view(state=DeliveryState.SENT), staff(Role.OFFICER, wards=frozenset({"bao-ninh"})), False),
        (view(ward=None), staff(Role.OFFICER, wards=frozenset({"bao-ninh"})), False),
    ],
)
def test_an_officer_sees_only_waiting_groups_of_their_wards(
    seen: DeliveryView, user: StaffUser, shown: bool
) -> None:
    assert officer_sees(seen, user) is shown


def test_the_preview_is_the_text_groups_get() -> None:
    draft = NoticeDraft.model_validate(notice_body(title="Cảnh báo", body="Nội dung"))
    shown = preview(draft)
    assert (
        shown["group_text"]
        == f"Cảnh báo\nNội dung\n\nCông an TP Đồng Hới. Mã xác thực: {PREVIEW_CODE}"
    )
    assert shown["article"] == {
        "title": "Cảnh báo",
        "author": "Công an TP Đồng Hới",
        "body": shown["group_text"],
    }
