"""Staff HTTP API: cases (list, read, transition, notes, changes, replies), live stream, reveal."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.reports.cases import Case, CaseError, masked
from services.reports.services import Reports
from services.reports.store import CaseFilter
from shared.audit import audit
from shared.auth import CurrentStaff, Role, StaffUser, require_roles
from shared.events.tips import CaseStatus, Outcome, TipCategory, TipKind, TipPriority
from shared.text import SafeLine, SafeText
from shared.web import IsoDateTime

READERS = (Role.DISPATCHER, Role.OFFICER, Role.ANALYST)
WORKERS = (Role.DISPATCHER, Role.OFFICER)
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 2.0  # an open stream ends this soon after its session or token is revoked

router = APIRouter(tags=["cases"])


def get_reports(request: Request) -> Reports:
    reports: Reports = request.app.state.service.reports
    return reports


ReportsDep = Annotated[Reports, Depends(get_reports)]
Reader = Annotated[StaffUser, Depends(require_roles(*READERS))]
Worker = Annotated[StaffUser, Depends(require_roles(*WORKERS))]
Admin = Annotated[StaffUser, Depends(require_roles(Role.ADMIN))]


class CasePage(BaseModel):
    items: list[Case]
    total: int
    offset: int
    limit: int


Slug = Annotated[SafeLine, Field(min_length=1, max_length=60)]
Id = Annotated[SafeLine, Field(min_length=1, max_length=100)]


class TransitionIn(BaseModel):
    to: CaseStatus
    outcome: Outcome | None = None
    merged_into: Id | None = None
    assignee: Id | None = None


class NoteIn(BaseModel):
    text: SafeText = Field(min_length=1, max_length=4000)


class ReplyIn(BaseModel):
    text: SafeText = Field(min_length=1, max_length=1800)


class ChangeIn(BaseModel):
    kind: TipKind | None = None
    category: TipCategory | None = None
    priority: TipPriority | None = None
    ward: Slug | None = None
    info_wards: list[Slug] | None = Field(default=None, max_length=50)


class RevealIn(BaseModel):
    reason: SafeText = Field(min_length=5, max_length=500)
    case_id: str = Field(min_length=1, max_length=100)  # the case that justifies it


class RevealOut(BaseModel):
    pseudonym: str
    zalo_user_id: str


def _forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail="Bạn không được giao phường/xã này.")


def _visible_wards(user: StaffUser) -> list[str] | None:
    """None = every ward (admins and staff without a ward list)."""
    if Role.ADMIN in user.roles or not user.wards:
        return None
    return sorted(user.wards)


async def _case(reports: Reports, case_id: str, user: StaffUser, *, write: bool) -> Case:
    try:
        case = await reports.desk.get(case_id)
    except CaseError as exc:
        raise HTTPException(exc.status_code, detail=exc.detail) from exc
    readable = user.can_see_ward(case.ward) or any(user.can_see_ward(w) for w in case.info_wards)
    if not (user.can_see_ward(case.ward) if write else readable):
        raise _forbidden()
    return case


def _refused(exc: CaseError) -> HTTPException:
    return HTTPException(exc.status_code, detail=exc.detail)


@router.get("/cases")
async def list_cases(
    reports: ReportsDep,
    user: Reader,
    ward: Annotated[Slug | None, Query()] = None,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    priority: TipPriority | None = None,
    category: TipCategory | None = None,
    kind: TipKind | None = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    # Up to 1,000: a busy ward's whole open queue in one request (bench/console.py).
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> CasePage:
    allowed = _visible_wards(user)
    if ward is not None:
        if allowed is not None and ward not in allowed:
            raise _forbidden()
        wards: list[str] | None = [ward]
    else:
        wards = allowed
    query = CaseFilter.build(
        wards, case_status, priority, category, kind, since, until, open_only=open_only
    )
    items, total = await reports.store.find(query, offset, limit)
    shown = [_shown(case, user) for case in items]
    return CasePage(items=shown, total=total, offset=offset, limit=limit)


@router.get(
    "/cases/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream_cases(reports: ReportsDep, user: Worker, request: Request) -> StreamingResponse:
    """Server-Sent Events: every new or changed case in the wards this user may see. The live
    queue is for those who work cases (dispatchers, officers, admins), not for leaders. The
    stream ends within seconds of the caller's session or token being revoked."""
    allowed = _visible_wards(user)
    verifier = request.app.state.staff
    loop = asyncio.get_running_loop()

    async def events() -> AsyncIterator[str]:
        checked = loop.time()
        async with reports.live.listen() as queue:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                if loop.time() - checked >= RECHECK_SECONDS:
                    if not await verifier.still_valid(request):
                        return
                    checked = loop.time()
                try:
                    _subject, payload = await asyncio.wait_for(
                        queue.get(), min(KEEPALIVE_SECONDS, RECHECK_SECONDS)
                    )
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if allowed is None or payload.get("ward") in allowed:
                    yield _sse(payload)

    return StreamingResponse(events(), media_type="text/event-stream")


def _sse(payload: dict[str, Any]) -> str:
    data = json.dumps(payload, ensure_ascii=False)
    event_id, event_type = payload.get("event_id", ""), payload.get("type", "message")
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n"


@router.get("/cases/{case_id}")
async def read_case(case_id: str, reports: ReportsDep, user: Reader) -> Case:
    return _shown(await _case(reports, case_id, user, write=False), user)


def _shown(case: Case, user: StaffUser) -> Case:
    """The whole case for those who work it (its ward's dispatchers and officers, admins);
    anyone else who may read it (leaders, a ward told for information) sees it masked
    (docs/security.md)."""
    if user.has_any(*WORKERS) and user.can_see_ward(case.ward):
        return case
    return masked(case)


@router.post("/cases/{case_id}/transitions")
async def transition_case(
    case_id: str, body: TransitionIn, reports: ReportsDep, user: Worker
) -> Case:
    case = await _case(reports, case_id, user, write=True)
    if body.merged_into:
        await _case(reports, body.merged_into, user, write=True)
    try:
        return await reports.desk.transition(
            case, user, body.to, body.outcome, body.merged_into, body.assignee
        )
    except CaseError as exc:
        raise _refused(exc) from exc


@router.post("/cases/{case_id}/ack")
async def acknowledge_case(case_id: str, reports: ReportsDep, user: Worker) -> Case:
    case = await _case(reports, case_id, user, write=True)
    return await reports.desk.acknowledge(case, user)


@router.post("/cases/{case_id}/notes", status_code=status.HTTP_201_CREATED)
async def add_note(case_id: str, body: NoteIn, reports: ReportsDep, user: Worker) -> Case:
    case = await _case(reports, case_id, user, write=True)
    return await reports.desk.add_note(case, user, body.text)


@router.patch("/cases/{case_id}")
async def change_case(case_id: str, body: ChangeIn, reports: ReportsDep, user: Worker) -> Case:
    case = await _case(reports, case_id, user, write=True)
    try:
        return await reports.desk.change(
            case, user, body.category, body.priority, body.ward, body.info_wards, body.kind
        )
    except CaseError as exc:
        raise _refused(exc) from exc


@router.post("/cases/{case_id}/reply")
async def reply_to_tipster(case_id: str, body: ReplyIn, reports: ReportsDep, user: Worker) -> Case:
    case = await _case(reports, case_id, user, write=True)
    try:
        return await reports.desk.reply(case, user, body.text)
    except CaseError as exc:
        raise _refused(exc) from exc


@router.post("/tipsters/{pseudonym}/reveal")
async def reveal_tipster(
    pseudonym: str, body: RevealIn, reports: ReportsDep, user: Admin, request: Request
) -> RevealOut:
    """Admins only, signed in with a second factor; audited with who, when and from where."""
    try:
        user_id = await reports.desk.reveal(pseudonym, user, body.reason, body.case_id)
    except CaseError as exc:
        raise _refused(exc) from exc
    await audit(request, "tipster_revealed", user, target=pseudonym, case_id=body.case_id)
    return RevealOut(pseudonym=pseudonym, zalo_user_id=user_id)


@router.get("/audit")
async def audit_log(
    reports: ReportsDep, user: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    return await reports.store.audit_entries(limit)


@router.get("/wards")
async def wards(reports: ReportsDep, user: CurrentStaff) -> list[dict[str, str]]:
    """The wards in force, for the console's filters."""
    return [
        {"slug": u.slug, "name": u.name, "kind": u.kind} for u in reports.gazetteer.current_units()
    ]
