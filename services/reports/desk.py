"""What staff do to cases: acknowledge, transition, merge, note, re-route, reply, reveal."""

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from services.reports import metrics, reply_texts
from services.reports.case_changes import retriage_changes, retriage_events, transition_changes
from services.reports.cases import Case, CaseError, HistoryEntry, Note, check_reveal
from services.reports.corrections import correction_of, is_retriage
from services.reports.outgoing import StagedEvent, updated_event
from services.reports.publisher import TipPublisher
from services.reports.store import ReportsStore
from services.reports.vault import TipsterVault
from shared.auth import StaffUser
from shared.events.tips import CaseStatus, Outcome, TipCategory, TipKind, TipPriority
from shared.places import UNKNOWN_WARD, Gazetteer
from shared.subjects import tips_updated_subject
from shared.zalo.errors import ZaloError

log = logging.getLogger(__name__)


class Messenger(Protocol):
    """The part of `shared.zalo.client.ZaloClient` that replies to a citizen."""

    async def send_text(self, user_id: str, text: str) -> Any: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Desk:
    def __init__(
        self,
        store: ReportsStore,
        publisher: TipPublisher,
        gazetteer: Gazetteer,
        sealer: TipsterVault,
        messenger: Messenger | None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.gazetteer = gazetteer
        self.sealer = sealer
        self.messenger = messenger
        self.clock = clock

    async def get(self, case_id: str) -> Case:
        case = await self.store.get(case_id)
        if case is None:
            raise CaseError("Không tìm thấy tin báo.", 404)
        return case

    async def acknowledge(self, case: Case, user: StaffUser) -> Case:
        updated = await self._apply(case, user, {}, "acknowledged")
        await self._emit(updated, "status_changed", user, detail="acknowledged")
        return updated

    async def transition(
        self,
        case: Case,
        user: StaffUser,
        target: CaseStatus,
        outcome: Outcome | None = None,
        merged_into: str | None = None,
        assignee: str | None = None,
    ) -> Case:
        original = None
        if target == CaseStatus.DUPLICATE and merged_into:
            original = await self.store.get(merged_into)
        changes = transition_changes(
            case, target, outcome, merged_into, original, assignee, user.id
        )
        updated = await self._apply(
            case, user, changes, f"status:{target}", expect={"status": case.status}
        )
        if not updated.is_open:
            await self.store.forget_recent(updated.ward, updated.id)
        change = "merged" if target == CaseStatus.DUPLICATE else "status_changed"
        await self._emit(updated, change, user, detail=str(outcome) if outcome else str(target))
        if target == CaseStatus.DUPLICATE and merged_into:
            await self._note_merge(updated, user)
        return updated

    async def add_note(self, case: Case, user: StaffUser, text: str) -> Case:
        at = self.clock()
        note = Note(at=at, author=user.id, text=text)
        history = HistoryEntry(at=at, actor=user.id, change="note_added")
        updated = await self.store.add_note(case.id, note, history)
        if updated is None:
            raise CaseError("Không tìm thấy tin báo.", 404)
        updated = await self._acknowledged(updated, at)
        await self._emit(updated, "note_added", user)
        return updated

    async def change(
        self,
        case: Case,
        user: StaffUser,
        category: TipCategory | None,
        priority: TipPriority | None,
        ward: str | None,
        info_wards: list[str] | None,
        kind: TipKind | None = None,
    ) -> Case:
        """Re-triage by hand; a new ward re-routes the case, `info_wards` get copies. A change
        of kind, category, priority or ward is also kept as a labelled example for training."""
        checked_ward = self._checked_ward(ward) if ward is not None and ward != case.ward else None
        new_info = [self._checked_ward(w) for w in info_wards or [] if w not in case.info_wards]
        changes = retriage_changes(
            case,
            kind=kind,
            category=category,
            priority=priority,
            ward=checked_ward,
            new_info=new_info,
        )
        updated = await self._apply(case, user, changes, "changed")
        if is_retriage(changes):
            await self.store.keep_correction(correction_of(updated, user.id, self.clock()))
        key = uuid.uuid4().hex
        staged = retriage_events(case, updated, changes, new_info, user.id, key, self.clock())
        await self.store.stage(staged)
        await self.publisher.flush(updated.id)
        return updated

    async def reply(self, case: Case, user: StaffUser, text: str) -> Case:
        if self.messenger is None:
            raise CaseError("Kênh trả lời Zalo chưa được cấu hình.", 503)
        if case.channel != "oa":
            raise CaseError("Tin báo từ nhóm: không thể nhắn riêng cho người báo.", 409)
        sealed = await self.store.sealed_tipster(case.tipster)
        if sealed is None:
            raise CaseError("Không tìm thấy kênh liên lạc của người báo.", 409)
        try:
            await self.messenger.send_text(
                self.sealer.open(sealed), reply_texts.staff_reply(text, case.ref)
            )
        except (ZaloError, httpx.HTTPError) as exc:
            log.warning(
                "staff reply failed", extra={"case_id": case.id, "error": type(exc).__name__}
            )
            code = f" (mã lỗi {exc.code})" if isinstance(exc, ZaloError) else ""
            raise CaseError(
                f"Không gửi được tin nhắn qua Zalo{code}. Hãy thử lại sau.", 502
            ) from exc
        at = self.clock()
        note = Note(at=at, author=user.id, text=f"Trả lời người báo: {text}")
        updated = await self.store.add_note(
            case.id, note, HistoryEntry(at=at, actor=user.id, change="replied")
        )
        if updated is None:
            raise CaseError("Không tìm thấy tin báo.", 404)
        updated = await self._acknowledged(updated, at)
        await self._emit(updated, "replied", user)
        log.info("staff replied", extra={"case_id": case.id, "tipster": case.tipster})
        return updated

    async def reveal(self, pseudonym: str, user: StaffUser, reason: str, case_id: str) -> str:
        """The raw Zalo id behind a pseudonym, for a case that tipster sent; every reveal is
        written to the audit log with that case."""
        case = check_reveal(await self.store.get(case_id), pseudonym)
        sealed = await self.store.sealed_tipster(pseudonym)
        if sealed is None:
            raise CaseError("Không tìm thấy người báo với bí danh này.", 404)
        await self.store.audit_reveal(
            {
                "_id": uuid.uuid4().hex,
                "at": self.clock(),
                "action": "reveal_tipster",
                "actor": user.id,
                "pseudonym": pseudonym,
                "case_id": case.id,
                "case_ref": case.ref,
                "case_ward": case.ward,
                "reason": reason,
            }
        )
        log.warning(
            "tipster identity revealed",
            extra={"actor": user.id, "tipster": pseudonym, "case_id": case_id},
        )
        return self.sealer.open(sealed)

    # --- helpers ------------------------------------------------------------------------------

    async def _apply(
        self,
        case: Case,
        user: StaffUser,
        changes: dict[str, Any],
        change: str,
        expect: dict[str, Any] | None = None,
    ) -> Case:
        at = self.clock()
        if case.acknowledged_at is None:
            changes = {**changes, "acknowledged_at": at}
        detail = ", ".join(f"{k}={v}" for k, v in changes.items() if k != "acknowledged_at")
        history = HistoryEntry(at=at, actor=user.id, change=change, detail=detail or None)
        updated = await self.store.update(case.id, changes, history, expect)
        if updated is None:
            raise CaseError("Tin báo vừa được người khác cập nhật; hãy tải lại và thử lại.")
        if "acknowledged_at" in changes:
            await self.store.unwatch_sla(case.id)
            metrics.case_acknowledged(case.priority, case.created_at, at)
        return updated

    async def _acknowledged(self, case: Case, at: datetime) -> Case:
        if case.acknowledged_at is not None:
            return case
        history = HistoryEntry(at=at, actor=SYSTEM_ACK, change="acknowledged")
        await self.store.unwatch_sla(case.id)
        metrics.case_acknowledged(case.priority, case.created_at, at)
        return await self.store.update(case.id, {"acknowledged_at": at}, history) or case

    def _update(self, case: Case, change: str, user: StaffUser, detail: str | None = None) -> Any:
        return updated_event(
            case, change, user.id, f"tu-{uuid.uuid4().hex}", self.clock(), detail=detail
        )

    async def _emit(
        self, case: Case, change: str, user: StaffUser, detail: str | None = None
    ) -> None:
        event = self._update(case, change, user, detail)
        await self.store.stage([StagedEvent.of(event, tips_updated_subject(case.ward), case.id)])
        await self.publisher.flush(case.id)

    async def _note_merge(self, duplicate: Case, user: StaffUser) -> None:
        if duplicate.merged_into is None:
            return
        original = await self.get(duplicate.merged_into)
        history = HistoryEntry(
            at=self.clock(), actor=user.id, change="merged_from", detail=duplicate.ref
        )
        await self.store.update(original.id, {}, history)
        await self._emit(original, "merged", user, detail=duplicate.ref)

    def _checked_ward(self, ward: str) -> str:
        if ward == UNKNOWN_WARD or self.gazetteer.is_current(ward):
            return ward
        current = self.gazetteer.current(ward)
        if current is None:
            raise CaseError(f"Phường/xã không hợp lệ: {ward}.", 422)
        return current


SYSTEM_ACK = "system"
