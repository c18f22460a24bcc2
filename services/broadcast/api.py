"""Staff HTTP API: groups, notices, approval, update/cancel, CAP import/export.

Followers: Zalo's broadcast API only sends articles, so a notice that targets followers is
published as an OA article and that article is broadcast with the API's targeting (ages,
gender, locations, cities); groups get the notice text itself.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.broadcast.approval import WardMove, ward_moves
from services.broadcast.composition import BroadcastService
from services.broadcast.domain import (
    BroadcastError,
    Category,
    Certainty,
    MsgType,
    Notice,
    NoticeDraft,
    NoticeQuery,
    NoticeStatus,
    Severity,
    Urgency,
    group_text,
)
from services.broadcast.forwarding import group_rows, officer_sees, preview
from services.broadcast.groups import Group, parse_groups_csv
from shared.audit import audit
from shared.auth import CurrentStaff, Role, StaffUser, require_roles
from shared.errors import FieldError, error_body
from shared.text import SafeLine, SafeText

FOLLOWERS_NOTE = (
    "Followers receive notices as an OA article broadcast (the broadcast API sends only "
    "articles), with optional targeting by age, gender, region and province."
)
router = APIRouter(tags=["broadcast"])
MAX_PAGE = 100_000  # (page - 1) * page_size must stay a 64-bit skip


def get_service(request: Request) -> BroadcastService:
    service: BroadcastService = request.app.state.service
    return service


BroadcastDep = Annotated[BroadcastService, Depends(get_service)]
Editor = Annotated[StaffUser, Depends(require_roles(Role.EDITOR, Role.APPROVER))]
Approver = Annotated[StaffUser, Depends(require_roles(Role.APPROVER))]
# Registrars keep the registry (new groups, names, officers); moving a group to another ward
# changes who an existing ward-targeted notice reaches, so that takes an admin (_write_groups).
Registrar = Annotated[StaffUser, Depends(require_roles(Role.REGISTRAR))]
# Officers' Zalo ids are in the registry: its keepers, and those who target notices, list it.
RegistryReader = Annotated[
    StaffUser, Depends(require_roles(Role.REGISTRAR, Role.EDITOR, Role.APPROVER))
]
Officer = Annotated[StaffUser, Depends(require_roles(Role.OFFICER))]


class Page(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[Any]


class Progress(BaseModel):
    counts: dict[str, int]
    wards: dict[str, dict[str, int]]


class NoticeView(BaseModel):
    notice: Notice
    progress: Progress


class ReturnIn(BaseModel):
    reason: SafeText = Field(min_length=3, max_length=1000)


class Forward(BaseModel):
    """A manual group waiting for its officer to forward a notice, with the text to post."""

    delivery_id: str
    notice_id: str
    title: str
    group: str
    ward: str | None
    text: str


class UpdateIn(BaseModel):
    title: SafeLine = Field(min_length=1, max_length=200)
    body: SafeText = Field(min_length=1, max_length=20_000)
    severity: Severity | None = None
    urgency: Urgency | None = None
    certainty: Certainty | None = None
    expires_at: datetime | None = None


async def _write_groups(rt: BroadcastService, groups: list[Group], user: StaffUser) -> None:
    """Upsert groups; a write that moves a known group to another ward needs an admin. Every
    write is audited with its moves."""
    moves = await _allowed_moves(rt, groups, user)
    await rt.groups.upsert_many(groups, datetime.now().astimezone())
    await rt.audit.record(
        "registry_written",
        user.id,
        groups=len(groups),
        moves=[m._asdict() for m in moves],
    )


async def _allowed_moves(
    rt: BroadcastService, groups: list[Group], user: StaffUser
) -> list[WardMove]:
    """The ward moves a write would make; refused (403) unless the caller is an admin."""
    current = await rt.groups.wards_of([g.group_id for g in groups])
    moves = ward_moves(current, groups)
    if moves and Role.ADMIN not in user.roles:
        raise BroadcastError(
            f"Chuyển {len(moves)} nhóm sang phường/xã khác cần quản trị viên (admin).", 403
        )
    return moves


@router.post("/groups/import", summary="Import groups from CSV: all rows or none")
async def import_groups(
    request: Request,
    rt: BroadcastDep,
    user: Registrar,
    dry_run: Annotated[bool, Query(description="Check the file, store nothing")] = False,
) -> JSONResponse:
    """`dry_run=true` answers exactly as the import would (the row errors, or how many groups
    and how many ward moves) without writing: the console's preview before importing."""
    text = (await request.body()).decode("utf-8-sig", errors="replace")
    groups, errors = parse_groups_csv(text)
    if errors:  # in the one error body: loc = ["row", line number in the file]
        fields = [FieldError(loc=["row", e.row], msg=m) for e in errors[:200] for m in e.errors]
        detail = f"Không nhập nhóm nào: {len(errors)} dòng lỗi."
        return JSONResponse(error_body(detail, fields, error="invalid"), status_code=422)
    if dry_run:  # the same refusals as the import itself, nothing written
        moves = await _allowed_moves(rt, groups, user)
        return JSONResponse({"dry_run": True, "groups": len(groups), "ward_moves": len(moves)})
    await _write_groups(rt, groups, user)
    return JSONResponse({"imported": len(groups)})


@router.get("/groups", response_model=Page)
async def list_groups(
    rt: BroadcastDep,
    _: RegistryReader,  # officers' Zalo ids are in it (docs/security.md)
    ward: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page:
    groups, total = await rt.groups.find(ward, (page - 1) * page_size, page_size)
    return Page(total=total, page=page, page_size=page_size, items=groups)


@router.put("/groups/{group_id}", response_model=Group)
async def put_group(group_id: str, group: Group, rt: BroadcastDep, user: Registrar) -> Group:
    if group.group_id != group_id:
        raise BroadcastError("group_id trong đường dẫn và nội dung không khớp.")
    await _write_groups(rt, [group], user)
    return group


@router.post(
    "/notices",
    status_code=status.HTTP_201_CREATED,
    response_model=Notice,
    description=FOLLOWERS_NOTE,
)
async def create_notice(
    draft: NoticeDraft,
    rt: BroadcastDep,
    user: Editor,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=128)] = None,
) -> Notice:
    if idempotency_key and not draft.idempotency_key:
        draft = draft.model_copy(update={"idempotency_key": idempotency_key})
    notice, created = await rt.notice_service.create(draft, user)
    if not created:
        response.status_code = status.HTTP_200_OK
    return notice


@router.get("/notices", response_model=Page)
async def list_notices(
    rt: BroadcastDep,
    _: CurrentStaff,
    status_: Annotated[NoticeStatus | None, Query(alias="status")] = None,
    category: Category | None = None,
    msg_type: MsgType | None = None,
    test_mode: bool | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Page:
    query = NoticeQuery(status_, category, msg_type, test_mode)
    notices, total = await rt.notices.find(query, (page - 1) * page_size, page_size)
    return Page(total=total, page=page, page_size=page_size, items=notices)


@router.post("/notices/preview", summary="Render a draft as groups and followers get it")
async def preview_notice(draft: NoticeDraft, _: Editor) -> dict[str, object]:
    """Nothing is stored: the group text and OA article the sender would post for this draft
    (the verification code is drawn when the notice is stored)."""
    return preview(draft)


@router.get("/forwards", response_model=list[Forward])
async def list_forwards(rt: BroadcastDep, user: Officer) -> list[Forward]:
    """The caller's manual groups that wait for a notice to be forwarded (their wards only)."""
    rows = []
    notices: dict[str, Notice | None] = {}  # many groups wait for the same few notices
    for view in await rt.deliveries.awaiting_all():
        if not officer_sees(view, user):
            continue
        notice_id = view.delivery.notice_id
        if notice_id not in notices:
            notices[notice_id] = await rt.notices.get(notice_id)
        notice = notices[notice_id]
        if notice is None:
            continue
        d = view.delivery
        text = group_text(notice)
        rows.append(
            Forward(
                delivery_id=d.id,
                notice_id=notice.id,
                title=notice.title,
                group=d.group_name or d.target,
                ward=d.ward,
                text=text,
            )
        )
    return rows


@router.post("/forwards/{delivery_id}/confirm")
async def confirm_forward(
    delivery_id: str, rt: BroadcastDep, user: Officer, request: Request
) -> dict[str, int]:
    """«Đã chuyển tiếp»: the same confirmation as an officer's «đã đăng» through the OA."""
    views = [v for v in await rt.deliveries.awaiting_all() if v.delivery.id == delivery_id]
    if not views or not officer_sees(views[0], user):
        raise BroadcastError("Không có nhóm nào của đồng chí chờ xác nhận thông báo này.", 404)
    confirmed = await rt.replies.confirm(views)
    await audit(request, "forward_confirmed", user, target=delivery_id)
    return {"confirmed": confirmed}


@router.get("/notices/{notice_id}", response_model=NoticeView)
async def get_notice(notice_id: str, rt: BroadcastDep, _: CurrentStaff) -> NoticeView:
    notice = await rt.notice_service.get(notice_id)
    counts, wards = await rt.deliveries.progress(notice_id)
    return NoticeView(notice=notice, progress=Progress(counts=counts, wards=wards))


@router.post("/notices/{notice_id}/approve", response_model=Notice)
async def approve_notice(
    notice_id: str, rt: BroadcastDep, user: Approver, request: Request
) -> Notice:
    """Approvers only, signed in with a second factor; audited with who, when and from where."""
    notice = await rt.notice_service.approve(notice_id, user)
    await audit(request, "notice_approved", user, target=notice_id)
    return notice


@router.get("/notices/{notice_id}/groups")
async def notice_groups(
    notice_id: str, rt: BroadcastDep, _: CurrentStaff
) -> list[dict[str, object]]:
    """Each group's delivery state, for the notice page's live progress."""
    await rt.notice_service.get(notice_id)
    return group_rows(await rt.deliveries.views(notice_id))


@router.post("/notices/{notice_id}/return", response_model=Notice)
async def return_notice(
    notice_id: str, body: ReturnIn, rt: BroadcastDep, user: Approver, request: Request
) -> Notice:
    """Send a held notice back to its editor with a reason (a second person only); audited."""
    notice = await rt.notice_service.send_back(notice_id, user, body.reason)
    await audit(request, "notice_returned", user, target=notice_id)
    return notice


@router.post("/notices/{notice_id}/update", status_code=201, response_model=Notice)
async def update_notice(notice_id: str, change: UpdateIn, rt: BroadcastDep, user: Editor) -> Notice:
    original = await rt.notice_service.get(notice_id)
    draft = NoticeDraft(
        title=change.title,
        body=change.body,
        category=original.category,
        severity=change.severity or original.severity,
        urgency=change.urgency or original.urgency,
        certainty=change.certainty or original.certainty,
        targets=original.targets,
        expires_at=change.expires_at,
        test_mode=original.test_mode,
    )
    return await rt.notice_service.update(notice_id, draft, user)


@router.post("/notices/{notice_id}/cancel")
async def cancel_notice(
    notice_id: str, rt: BroadcastDep, user: Editor, request: Request
) -> dict[str, Any]:
    original, withdrawal = await rt.notice_service.cancel(notice_id, user)
    await audit(request, "notice_cancelled", user, target=notice_id)
    return {"cancelled": original, "withdrawal": withdrawal}


@router.post("/notices/cap", status_code=201, response_model=Notice)
async def import_cap(
    request: Request, rt: BroadcastDep, user: Editor, followers: bool = False
) -> Notice:
    """Relay a CAP 1.2 alert; invalid CAP is answered 422 with the reason."""
    return await rt.notice_service.import_cap(await request.body(), user, followers)


@router.get("/notices/{notice_id}/cap")
async def export_cap(notice_id: str, rt: BroadcastDep, _: CurrentStaff) -> Response:
    return Response(await rt.notice_service.export_cap(notice_id), media_type="application/cap+xml")
