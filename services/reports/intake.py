"""From a citizen's message to a case: triage, grouping, duplicates, routing, the outbox.

Idempotent: a case opened by an event has an id derived from that event, a message joins a
case at most once, and staged events carry deterministic ids (`Nats-Msg-Id`).
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from services.reports import replies
from services.reports.cases import (
    Case,
    CaseMessage,
    HistoryEntry,
    WardSource,
    case_id_for,
    higher_priority,
    reference_code,
)
from services.reports.duplicates import fingerprint, ranked_duplicates
from services.reports.knowledge import KnowledgeBase
from services.reports.outgoing import stage_item, triaged_event, updated_event
from services.reports.roster import Roster
from services.reports.store import ReportsStore
from services.reports.triage import Triage, Triager
from services.reports.vault import Sealer
from services.reports.wards import ward_in_text
from shared.events.tips import (
    CaseStatus,
    Reason,
    TipKind,
    TipPriority,
    TipTriaged,
    TipUpdated,
)
from shared.events.zalo import MessageType, ZaloEventKind, ZaloEventReceived
from shared.places import UNKNOWN_WARD, Gazetteer
from shared.subjects import tips_triaged_subject, tips_updated_subject
from shared.verification import find_verification_code

log = logging.getLogger(__name__)
SYSTEM = "system"


@dataclass(frozen=True)
class IntakeConfig:
    group_window: timedelta
    duplicate_window: timedelta
    duplicate_threshold: float
    ref_prefix: str
    group_wards: dict[str, str]
    location_max_km: float = 3.0
    verification_prefix: str = "CA"


@dataclass
class IntakeResult:
    """What happened, and what the handler still has to send to the citizen."""

    outcome: str
    case_id: str | None = None
    reply: str | None = None
    reply_key: str | None = None
    reasons: list[str] = field(default_factory=list)


class Intake:
    """Turns `ZaloEventReceived` message events into cases and staged tip events."""

    def __init__(
        self,
        store: ReportsStore,
        triager: Triager,
        gazetteer: Gazetteer,
        knowledge: KnowledgeBase,
        sealer: Sealer,
        roster: Roster,
        config: IntakeConfig,
    ) -> None:
        self.store = store
        self.triager = triager
        self.gazetteer = gazetteer
        self.knowledge = knowledge
        self.sealer = sealer
        self.roster = roster
        self.config = config
        self._stopwords = frozenset(
            token.folded for word in triager.rules.stopwords for token in triager.tokens(word)
        )

    async def handle(self, event: ZaloEventReceived) -> IntakeResult:
        seen = await self.store.seen(event.event_id)
        if seen is not None:
            return await self._replayed(event, seen)
        if event.user_id is None:
            raise ValueError("message event without a user id")
        tipster = self.sealer.pseudonym(event.user_id)
        message = _case_message(event)
        since = event.received_at - self.config.group_window
        if find_verification_code(message.text or "", self.config.verification_prefix):
            # A resident checking a notice's code, or a notice forwarded into a group: broadcast
            # answers it, and the warning words it quotes must not open a tip.
            result = IntakeResult(outcome="ignored_verification")
        elif open_case := await self.store.find_open_for_tipster(tipster, since):
            result = await self._join(open_case, message, event)
        else:
            result = await self._open(event, tipster, message)
        await self.store.record(event.event_id, result.case_id, result.outcome, event.received_at)
        return result

    # --- a new case, or none ------------------------------------------------------------------

    async def _open(
        self, event: ZaloEventReceived, tipster: str, message: CaseMessage
    ) -> IntakeResult:
        triage = self._triage(message)
        # A question the model is unsure of may be a report phrased as one: it becomes a case
        # for a dispatcher to check rather than an automatic answer or nothing.
        settled_question = triage.kind == TipKind.QUESTION and not triage.review
        if settled_question:
            answered = self._answer(message, event)
            if answered is not None:
                return answered
        if triage.kind == TipKind.OTHER or (
            event.kind == ZaloEventKind.GROUP_MESSAGE and settled_question
        ):
            return IntakeResult(outcome=f"ignored_{triage.kind}")
        case = self._new_case(event, tipster, message, triage)
        await self._find_duplicate(case)
        case = await self._insert(case)
        sealed = self.sealer.seal(event.user_id or "")
        await self.store.keep_tipster(tipster, sealed, case.id, case.last_message_at)
        await self.store.remember_recent(fingerprint(case, self._stopwords))
        if case.priority == TipPriority.URGENT:
            await self.store.watch_sla(case.id, case.created_at)
        await self._stage_opened(case, event)
        log.info(
            "case opened",
            extra={"case_id": case.id, "tipster": tipster, "ward": case.ward, "kind": case.kind},
        )
        return self._opened_result(case, event)

    def _new_case(
        self, event: ZaloEventReceived, tipster: str, message: CaseMessage, triage: Triage
    ) -> Case:
        ward, source, places, place_reasons = self._ward(event, message.text or "", message)
        case_id = case_id_for(event.event_id)
        at = event.received_at
        officer = self.roster.on_duty(ward, at) if ward != UNKNOWN_WARD else None
        history = [HistoryEntry(at=at, actor=SYSTEM, change="created")]
        if officer:
            history.append(HistoryEntry(at=at, actor=SYSTEM, change="assigned", detail=officer))
        kind = triage.kind if triage.kind != TipKind.OTHER else TipKind.TIP
        return Case(
            id=case_id,
            ref=reference_code(case_id, self.config.ref_prefix),
            kind=kind,
            category=triage.category,
            priority=triage.priority,
            ward=ward,
            ward_source=source,
            places=places,
            reasons=[*triage.reasons, *place_reasons],
            status=CaseStatus.ASSIGNED if officer else CaseStatus.NEW,
            tipster=tipster,
            channel="group" if event.kind == ZaloEventKind.GROUP_MESSAGE else "oa",
            group_id=event.group_id,
            messages=[message],
            message_ids=[event.event_id],
            created_at=at,
            updated_at=at,
            last_message_at=at,
            assignee=officer,
            info_wards=self._other_wards(ward, message.text or ""),
            history=history,
        )

    async def _stage_opened(self, case: Case, event: ZaloEventReceived) -> None:
        """The new case's card for its ward, info copies, and the duplicate suggestion."""
        staged = [stage_item(self._triaged(case, case.ward), self._triaged_subject(case))]
        staged += [
            stage_item(self._triaged(case, ward, info_only=True), self._triaged_subject(case, ward))
            for ward in case.info_wards
        ]
        if case.duplicate_of is not None:
            update = self._updated(case, "duplicate_suggested", f"{event.event_id}:dup")
            staged.append(stage_item(update, tips_updated_subject(case.ward)))
        await self.store.stage(case.id, staged)

    async def _insert(self, case: Case) -> Case:
        try:
            if await self.store.insert(case):
                return case
        except DuplicateKeyError:
            case = case.model_copy(
                update={"ref": reference_code(case.id, self.config.ref_prefix, length=10)}
            )
            if await self.store.insert(case):
                return case
        existing = await self.store.get(case.id)
        if existing is None:
            raise RuntimeError(f"case {case.id} vanished during intake")
        return existing

    async def _find_duplicate(self, case: Case) -> Case | None:
        """The open case of another tipster that looks like the same incident; noted on `case`."""
        if case.kind != TipKind.TIP:
            return None
        mark = fingerprint(case, self._stopwords)
        since = case.created_at - self.config.duplicate_window
        wards = None if case.ward == UNKNOWN_WARD else [case.ward, UNKNOWN_WARD]
        candidates = await self.store.recent_fingerprints(wards, since)
        ranked = ranked_duplicates(
            mark,
            candidates,
            threshold=self.config.duplicate_threshold,
            window=self.config.duplicate_window,
        )
        for candidate, score in ranked:
            original = await self.store.get(candidate.case_id)
            if original is None or not original.is_open:
                continue
            case.duplicate_of = original.id
            case.history.append(
                HistoryEntry(
                    at=case.created_at,
                    actor=SYSTEM,
                    change="duplicate_suggested",
                    detail=f"{original.ref} ({score:.2f})",
                )
            )
            return original
        return None

    # --- a message joins an open case ---------------------------------------------------------

    async def _join(
        self, case: Case, message: CaseMessage, event: ZaloEventReceived
    ) -> IntakeResult:
        text = "\n".join(t for t in (case.text, message.text) if t)
        triage = self.triager.classify(text)
        changes: dict[str, object] = {"last_message_at": event.received_at}
        retriaged = False
        ward_reasons = [r for r in case.reasons if r.rule.startswith("ward.")]
        other_reasons = [r for r in case.reasons if not r.rule.startswith("ward.")]
        if case.kind == TipKind.TIP or triage.kind == TipKind.TIP:
            kind = TipKind.TIP
            category = triage.category if triage.kind == TipKind.TIP else case.category
        else:
            kind, category = case.kind, case.category
        priority = higher_priority(case.priority, triage.priority)
        if (kind, category, priority) != (case.kind, case.category, case.priority):
            retriaged = True
            changes |= {"kind": kind, "category": category, "priority": priority}
            other_reasons = list(triage.reasons)
        ward_change = None
        if case.ward == UNKNOWN_WARD:
            ward, source, places, place_reasons = self._ward(event, text, message)
            if ward != UNKNOWN_WARD:
                ward_change = ward
                ward_reasons = place_reasons
                changes |= {"ward": ward, "ward_source": source, "places": places}
        if retriaged or ward_change is not None:
            changes["reasons"] = [r.model_dump() for r in other_reasons + ward_reasons]
        joined = await self.store.add_message(case.id, message, changes)
        if not joined:
            if case.message_ids[:1] == [event.event_id]:
                # This event opened the case and its processing stopped half-way: finish it.
                await self._stage_opened(case, event)
                return self._opened_result(case, event)
            return IntakeResult(outcome="already_joined", case_id=case.id)
        await self.store.remember_open_case(case.tipster, case.id, event.received_at)
        if priority == TipPriority.URGENT and case.priority != TipPriority.URGENT:
            await self.store.watch_sla(case.id, event.received_at)
        updated = await self.store.get(case.id)
        if updated is None:
            raise RuntimeError(f"case {case.id} vanished during intake")
        if ward_change is not None:
            await self.store.remember_recent(fingerprint(updated, self._stopwords))
        staged = [
            stage_item(
                self._updated(updated, "message_added", f"{event.event_id}:msg"),
                tips_updated_subject(updated.ward),
            )
        ]
        if retriaged:
            staged.append(
                stage_item(
                    self._updated(updated, "retriaged", f"{event.event_id}:retriage"),
                    tips_updated_subject(updated.ward),
                )
            )
        if ward_change is not None:
            moved = self._updated(
                updated, "rerouted", f"{event.event_id}:reroute", previous_ward=case.ward
            )
            staged.append(stage_item(moved, tips_updated_subject(case.ward)))
            staged.append(
                stage_item(self._triaged(updated, ward_change), self._triaged_subject(updated))
            )
        await self.store.stage(case.id, staged)
        log.info("message joined case", extra={"case_id": case.id, "tipster": case.tipster})
        return IntakeResult(outcome="joined", case_id=case.id)

    # --- redelivery ---------------------------------------------------------------------------

    async def _replayed(self, event: ZaloEventReceived, seen: dict[str, object]) -> IntakeResult:
        case_id = seen.get("case_id")
        outcome = str(seen.get("outcome"))
        if not isinstance(case_id, str) or outcome != "opened":
            return IntakeResult(
                outcome="redelivered", case_id=case_id if isinstance(case_id, str) else None
            )
        case = await self.store.get(case_id)
        if case is None:
            return IntakeResult(outcome="redelivered")
        result = self._opened_result(case, event)
        result.outcome = "redelivered"
        return result

    # --- helpers ------------------------------------------------------------------------------

    def _triage(self, message: CaseMessage) -> Triage:
        if message.text:
            return self.triager.classify(message.text)
        if message.photos or message.latitude is not None:
            return Triage(
                kind=TipKind.TIP,
                category=self.triager.classify("").category,
                priority=TipPriority.NORMAL,
                reasons=(Reason(rule="kind.attachment", term=message.message_type or ""),),
            )
        return self.triager.classify("")

    def _answer(self, message: CaseMessage, event: ZaloEventReceived) -> IntakeResult | None:
        tokens = self.triager.tokens(message.text or "")
        wards = [m.ward for m in self.gazetteer.find(message.text or "")]
        answer = self.knowledge.answer(tokens, wards)
        if answer is None or event.kind != ZaloEventKind.USER_MESSAGE:
            return None
        return IntakeResult(
            outcome="answered",
            reply=answer.text,
            reply_key=f"{event.event_id}:answer",
            reasons=[f"knowledge.{answer.entry_id}"],
        )

    def _opened_result(self, case: Case, event: ZaloEventReceived) -> IntakeResult:
        reply = None
        if case.channel == "oa" and not event.is_anonymous:
            name = self._ward_name(case.ward)
            reply = replies.received(case.kind, case.category, case.priority, name, case.ref)
        return IntakeResult(
            outcome="opened", case_id=case.id, reply=reply, reply_key=f"{case.id}:received"
        )

    def _ward(
        self, event: ZaloEventReceived, text: str, message: CaseMessage
    ) -> tuple[str, WardSource, list[str], list[Reason]]:
        """Group's ward, else a place named in the text, else a shared location, else unknown."""
        places = self.gazetteer.find(text)
        units = sorted({m.unit for m in places})
        group_ward = self.config.group_wards.get(event.group_id or "")
        if group_ward is not None:
            ward = self.gazetteer.current(group_ward) or group_ward
            return ward, "group", units, [Reason(rule="ward.group", term=ward)]
        named = ward_in_text(self.gazetteer, text)
        if named is not None:
            reason = Reason(rule=f"ward.{named.via}", term=named.name)
            return named.ward, "text", units, [reason]
        if message.latitude is not None and message.longitude is not None:
            near = self.gazetteer.nearest(
                message.latitude, message.longitude, self.config.location_max_km
            )
            if near is not None:
                return (
                    near.ward,
                    "location",
                    [near.unit],
                    [Reason(rule="ward.location", term=near.name)],
                )
        return UNKNOWN_WARD, "unknown", [], []

    def _other_wards(self, ward: str, text: str) -> list[str]:
        return sorted({m.ward for m in self.gazetteer.find(text)} - {ward, UNKNOWN_WARD})

    def _ward_name(self, ward: str) -> str | None:
        unit = self.gazetteer.units.get(ward)
        return f"{unit.kind} {unit.name}" if unit else None

    def _triaged_subject(self, case: Case, ward: str | None = None) -> str:
        return tips_triaged_subject(ward or case.ward, case.priority)

    def _triaged(self, case: Case, ward: str, info_only: bool = False) -> TipTriaged:
        return triaged_event(case, ward, info_only)

    def _updated(
        self, case: Case, change: str, key: str, previous_ward: str | None = None
    ) -> TipUpdated:
        return updated_event(case, change, SYSTEM, f"tu-{key}", case.last_message_at, previous_ward)


def _case_message(event: ZaloEventReceived) -> CaseMessage:
    photos = tuple(
        a.url for a in event.attachments if a.type in (MessageType.IMAGE, MessageType.GIF) and a.url
    )
    location = next(
        (a for a in event.attachments if a.type == MessageType.LOCATION and a.latitude is not None),
        None,
    )
    return CaseMessage(
        event_id=event.event_id,
        at=event.received_at,
        message_type=event.message_type,
        text=(event.text or "").strip() or None,
        photos=photos,
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
    )
