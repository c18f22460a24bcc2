"""Ward officers forwarding notices into their personal (manual) groups from the console: which
waiting deliveries an officer sees, and the preview of what a notice will send. No I/O here."""

from collections.abc import Iterable
from datetime import UTC, datetime

from services.broadcast.domain import DeliveryState, Notice, NoticeDraft, NoticeStatus, group_text
from services.broadcast.records import DeliveryView
from shared.auth import Role, StaffUser

PREVIEW_CODE = "(mã xác thực)"  # stands for the code a stored notice gets
ARTICLE_AUTHOR = "Công an TP Đồng Hới"  # the sender's article author


def officer_sees(view: DeliveryView, user: StaffUser) -> bool:
    """A manual delivery waiting for its «đã chuyển tiếp», in a ward the caller serves: a ward
    officer sees only the personal groups of their own wards (an account without wards
    serves none of them), an admin every one."""
    d = view.delivery
    if not d.is_manual or view.state != DeliveryState.AWAITING_CONFIRMATION:
        return False
    if Role.ADMIN in user.roles:
        return True
    return Role.OFFICER in user.roles and d.ward is not None and d.ward in user.wards


def preview_notice(draft: NoticeDraft) -> Notice:
    """The notice a draft would become, for rendering only (never stored)."""
    return Notice(
        **draft.model_dump(),
        id="preview",
        status=NoticeStatus.PENDING_APPROVAL,
        verification_code=PREVIEW_CODE,
        created_by="preview",
        created_at=datetime.now(UTC),
    )


def preview(draft: NoticeDraft) -> dict[str, object]:
    """The exact text groups get (`group_text`) and the OA article followers get."""
    notice = preview_notice(draft)
    text = group_text(notice)
    return {
        "group_text": text,
        "article": {"title": notice.title, "author": ARTICLE_AUTHOR, "body": text},
    }


def group_rows(views: Iterable[DeliveryView]) -> list[dict[str, object]]:
    """One row per delivery, for the notice page's per-group progress."""
    return [
        {
            "delivery_id": v.delivery.id,
            "group": v.delivery.group_name or v.delivery.target_kind,
            "ward": v.delivery.ward,
            "channel": v.delivery.channel,
            "state": v.state.value,
        }
        for v in views
    ]
