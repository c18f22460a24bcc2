"""What intake does with citizens' messages, decided without I/O.

`IntakeCore.plan(arrivals, snapshot)` reads what the store held when a batch arrived (a
`Snapshot`) and returns a `Plan`: the cases to insert, the messages to join, the tipster,
duplicate-list and SLA notes, the tip events to stage, the ledger entries and each message's
result (`intake_plan.py`). The orchestrator (`intake.py`) only loads the snapshot, lets a
`Planner` (`intake_planning.py`) decide the batch in order with this core, and performs the
plan. Planning twice from the same snapshot gives the same plan, so a batch that meets a case
that already exists or a reference code that is taken is simply planned again.
"""

from services.reports import reply_texts
from services.reports.cases import (
    Case,
    CaseMessage,
    HistoryEntry,
    WardSource,
    case_id_for,
    higher_priority,
    reference_code,
)
from services.reports.duplicates import Fingerprint, fingerprint, ranked_duplicates
from services.reports.intake_plan import (
    Arrival,
    IntakeConfig,
    IntakeRecord,
    IntakeResult,
    Join,
    Plan,
    Reroute,
    Retriage,
    SlaWatch,
    Snapshot,
    TipsterNote,
    case_message,
)
from services.reports.intake_planning import NeedCases, Planner, Working, apply_join, is_open
from services.reports.knowledge import KnowledgeBase
from services.reports.outgoing import StagedEvent, triaged_event, updated_event
from services.reports.roster import Roster
from services.reports.triage import Triage, Triager
from services.reports.wards import ward_in_text
from shared.events.envelope import Event
from shared.events.tips import CaseStatus, Reason, TipKind, TipPriority
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.places import UNKNOWN_WARD, Gazetteer, PlaceMatch
from shared.subjects import tips_triaged_subject, tips_updated_subject
from shared.verification import find_verification_code

SYSTEM = "system"
LONG_REF = 10  # characters of a reference code whose short form is taken
MAX_UNKNOWN = 10  # duplicate candidates asked for at once


class IntakeCore:
    """Triage, grouping, duplicates, routing: pure decisions over typed models."""

    def __init__(
        self,
        triager: Triager,
        gazetteer: Gazetteer,
        knowledge: KnowledgeBase,
        roster: Roster,
        config: IntakeConfig,
    ) -> None:
        self.triager = triager
        self.gazetteer = gazetteer
        self.knowledge = knowledge
        self.roster = roster
        self.config = config
        self.stopwords = frozenset(
            token.folded for word in triager.rules.stopwords for token in triager.tokens(word)
        )

    def read(self, event: ZaloEventReceived, tipster: str) -> Arrival:
        """The arrival with the triage of its own message, which depends on nothing stored:
        computed ahead while another batch waits for the store."""
        message = case_message(event)
        return Arrival(event, tipster, message, self._triage(message))

    def plan(self, arrivals: list[Arrival], snapshot: Snapshot) -> Plan:
        """Decide a batch in order; a plan with `missing` set decided nothing (plan again with
        those cases in the snapshot, or use a `Planner` to go on where it stopped)."""
        planner = Planner(self, snapshot)
        missing = planner.advance(arrivals)
        return Plan(missing=missing) if missing else planner.plan

    # --- one message ----------------------------------------------------------------------------

    def decide(self, arrival: Arrival, work: Working, plan: Plan) -> None:
        """Add one message's effects and result to `plan`; raises `NeedCases` before changing
        anything when it needs a case `work` does not hold."""
        result = self._decide(arrival, work, plan)
        plan.results.append(result)
        event_id = arrival.event.event_id
        if event_id not in work.seen:
            record = IntakeRecord(
                event_id=event_id,
                case_id=result.case_id,
                outcome=result.outcome,
                at=arrival.event.received_at,
            )
            work.seen[event_id] = record
            plan.records.append(record)

    def _decide(self, arrival: Arrival, work: Working, plan: Plan) -> IntakeResult:
        event = arrival.event
        seen = work.seen.get(event.event_id)
        if seen is not None:
            return self._replayed(seen, event, work)
        text = arrival.message.text or ""
        if find_verification_code(text, self.config.verification_prefix):
            # A resident checking a notice's code, or a notice forwarded into a group: broadcast
            # answers it, and the warning words it quotes must not open a tip.
            return IntakeResult(outcome="ignored_verification")
        open_case = work.open_case(arrival.tipster, event.received_at - self.config.group_window)
        if open_case is not None:
            return self._join(open_case, arrival, work, plan)
        return self._open(arrival, work, plan)

    def _replayed(
        self, seen: IntakeRecord, event: ZaloEventReceived, work: Working
    ) -> IntakeResult:
        if seen.case_id is None or seen.outcome != "opened":
            return IntakeResult(outcome="redelivered", case_id=seen.case_id)
        case = work.case(seen.case_id)
        if case is None:
            return IntakeResult(outcome="redelivered")
        result = self._opened_result(case, event)
        result.outcome = "redelivered"
        return result

    # --- a new case, or none --------------------------------------------------------------------

    def _open(self, arrival: Arrival, work: Working, plan: Plan) -> IntakeResult:
        event, message = arrival.event, arrival.message
        triage = arrival.triage or self._triage(message)
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
        # Unknown counts as new: inserting a case that exists fails, and the batch is re-planned.
        existing = work.cases.get(case_id_for(event.event_id))
        case = existing or self._new_case(arrival, triage, work)
        mark = fingerprint(case, self.stopwords)
        if existing is None:
            self._note_duplicate(case, mark, work)
            plan.new_cases.append(case)
        # else: opened before a crash; finish what followed the insert
        work.cases[case.id] = case
        work.note_tipster(arrival.tipster, case.id, case.last_message_at)
        plan.tipsters.append(TipsterNote(arrival.tipster, case.id, case.last_message_at, True))
        work.note_recent(mark)
        plan.fingerprints.append(mark)
        if case.priority == TipPriority.URGENT:
            plan.sla.append(SlaWatch(case.id, case.created_at))
        plan.staged += self._opened_events(case, event)
        return self._opened_result(case, event)

    def _new_case(self, arrival: Arrival, triage: Triage, work: Working) -> Case:
        event, message = arrival.event, arrival.message
        found = self.gazetteer.find(message.text or "")
        ward, source, places, place_reasons = self._ward(event, message.text or "", message, found)
        case_id = case_id_for(event.event_id)
        ref = reference_code(case_id, self.config.ref_prefix)
        if ref in work.taken_refs:
            ref = reference_code(case_id, self.config.ref_prefix, length=LONG_REF)
        at = event.received_at
        officer = self.roster.on_duty(ward, at) if ward != UNKNOWN_WARD else None
        history = [HistoryEntry(at=at, actor=SYSTEM, change="created")]
        if officer:
            history.append(HistoryEntry(at=at, actor=SYSTEM, change="assigned", detail=officer))
        kind = triage.kind if triage.kind != TipKind.OTHER else TipKind.TIP
        return Case(
            id=case_id,
            ref=ref,
            kind=kind,
            category=triage.category,
            priority=triage.priority,
            ward=ward,
            ward_source=source,
            places=places,
            reasons=[*triage.reasons, *place_reasons],
            status=CaseStatus.ASSIGNED if officer else CaseStatus.NEW,
            tipster=arrival.tipster,
            channel="group" if event.kind == ZaloEventKind.GROUP_MESSAGE else "oa",
            group_id=event.group_id,
            messages=[message],
            message_ids=[event.event_id],
            created_at=at,
            updated_at=at,
            last_message_at=at,
            assignee=officer,
            info_wards=sorted({m.ward for m in found} - {ward, UNKNOWN_WARD}),
            history=history,
        )

    def _note_duplicate(self, case: Case, mark: Fingerprint, work: Working) -> None:
        """Mark `case` as a likely duplicate of another tipster's open case of the incident."""
        if case.kind != TipKind.TIP:
            return
        since = case.created_at - self.config.duplicate_window
        wards = None if case.ward == UNKNOWN_WARD else (case.ward, UNKNOWN_WARD)
        candidates = work.recent(wards, since)
        ranked = ranked_duplicates(
            mark,
            candidates,
            threshold=self.config.duplicate_threshold,
            window=self.config.duplicate_window,
        )
        # A candidate noted with its code is open (closing a case takes it off the list)
        # unless this batch knows otherwise; one noted without (before that rule) must be
        # loaded. Those ranked before the first open one are asked for together.
        unknown = []
        for candidate, _ in ranked:
            if candidate.case_id not in work.cases and candidate.ref is None:
                unknown.append(candidate.case_id)
            elif is_open(candidate, work):
                break
        if unknown:
            raise NeedCases(set(unknown[:MAX_UNKNOWN]))
        for candidate, score in ranked:
            if not is_open(candidate, work):
                continue
            original = work.cases.get(candidate.case_id)
            case.duplicate_of = candidate.case_id
            case.history.append(
                HistoryEntry(
                    at=case.created_at,
                    actor=SYSTEM,
                    change="duplicate_suggested",
                    detail=f"{original.ref if original else candidate.ref} ({score:.2f})",
                )
            )
            return

    def _opened_events(self, case: Case, event: ZaloEventReceived) -> list[StagedEvent]:
        """The new case's card for its ward, info copies, and the duplicate suggestion."""
        staged = [self._card(case, case.ward)]
        staged += [self._card(case, ward, info_only=True) for ward in case.info_wards]
        if case.duplicate_of is not None:
            update = self._update(case, "duplicate_suggested", f"{event.event_id}:dup")
            staged.append(StagedEvent.of(update, tips_updated_subject(case.ward), case.id))
        return staged

    # --- a message joins an open case -----------------------------------------------------------

    def _join(self, case: Case, arrival: Arrival, work: Working, plan: Plan) -> IntakeResult:
        event = arrival.event
        if event.event_id in case.message_ids:
            if case.message_ids[:1] == [event.event_id]:
                # This event opened the case and its processing stopped half-way: finish it.
                plan.staged += self._opened_events(case, event)
                return self._opened_result(case, event)
            return IntakeResult(outcome="already_joined", case_id=case.id)
        join = self._joined(case, arrival)
        plan.joins.append(join)
        updated = apply_join(case, join)
        work.cases[case.id] = updated
        work.note_tipster(arrival.tipster, case.id, event.received_at)
        plan.tipsters.append(TipsterNote(arrival.tipster, case.id, event.received_at, False))
        if updated.priority == TipPriority.URGENT and case.priority != TipPriority.URGENT:
            plan.sla.append(SlaWatch(case.id, event.received_at))
        if join.reroute is not None:
            mark = fingerprint(updated, self.stopwords)
            work.note_recent(mark)
            plan.fingerprints.append(mark)
        plan.staged += self._joined_events(case, updated, join, event)
        return IntakeResult(outcome="joined", case_id=case.id)

    def _joined(self, case: Case, arrival: Arrival) -> Join:
        """Re-triage the case on its whole text; place an unknown-ward case if now possible."""
        message, event = arrival.message, arrival.event
        text = "\n".join(t for t in (case.text, message.text) if t)
        triage = self.triager.classify(text)
        ward_reasons = [r for r in case.reasons if r.rule.startswith("ward.")]
        other_reasons = [r for r in case.reasons if not r.rule.startswith("ward.")]
        if case.kind == TipKind.TIP or triage.kind == TipKind.TIP:
            kind = TipKind.TIP
            category = triage.category if triage.kind == TipKind.TIP else case.category
        else:
            kind, category = case.kind, case.category
        priority = higher_priority(case.priority, triage.priority)
        retriage = None
        if (kind, category, priority) != (case.kind, case.category, case.priority):
            retriage = Retriage(kind, category, priority)
            other_reasons = list(triage.reasons)
        reroute = None
        if case.ward == UNKNOWN_WARD:
            ward, source, places, place_reasons = self._ward(event, text, message)
            if ward != UNKNOWN_WARD:
                reroute = Reroute(ward, source, places)
                ward_reasons = place_reasons
        reasons = None
        if retriage is not None or reroute is not None:
            reasons = (*other_reasons, *ward_reasons)
        return Join(case.id, message, event.received_at, retriage, reroute, reasons)

    def _joined_events(
        self, case: Case, updated: Case, join: Join, event: ZaloEventReceived
    ) -> list[StagedEvent]:
        key = event.event_id
        subject = tips_updated_subject(updated.ward)
        staged = [
            StagedEvent.of(self._update(updated, "message_added", f"{key}:msg"), subject, case.id)
        ]
        if join.retriage is not None:
            retriaged = self._update(updated, "retriaged", f"{key}:retriage")
            staged.append(StagedEvent.of(retriaged, subject, case.id))
        if join.reroute is not None:
            moved = self._update(updated, "rerouted", f"{key}:reroute", previous_ward=case.ward)
            staged.append(StagedEvent.of(moved, tips_updated_subject(case.ward), case.id))
            staged.append(self._card(updated, join.reroute.ward))
        return staged

    # --- helpers --------------------------------------------------------------------------------

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
            reply = reply_texts.received(case.kind, case.category, case.priority, name, case.ref)
        return IntakeResult(
            outcome="opened", case_id=case.id, reply=reply, reply_key=f"{case.id}:received"
        )

    def _ward(
        self,
        event: ZaloEventReceived,
        text: str,
        message: CaseMessage,
        found: list[PlaceMatch] | None = None,
    ) -> tuple[str, WardSource, list[str], list[Reason]]:
        """Group's ward, else a place named in the text, else a shared location, else unknown;
        `found`: the gazetteer's matches in `text`, if already known."""
        places = self.gazetteer.find(text) if found is None else found
        units = sorted({m.unit for m in places})
        group_ward = self.config.group_wards.get(event.group_id or "")
        if group_ward is not None:
            ward = self.gazetteer.current(group_ward) or group_ward
            return ward, "group", units, [Reason(rule="ward.group", term=ward)]
        named = ward_in_text(self.gazetteer, text, places)
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

    def _ward_name(self, ward: str) -> str | None:
        unit = self.gazetteer.units.get(ward)
        return f"{unit.kind} {unit.name}" if unit else None

    def _card(self, case: Case, ward: str, info_only: bool = False) -> StagedEvent:
        event = triaged_event(case, ward, info_only)
        return StagedEvent.of(event, tips_triaged_subject(ward, case.priority), case.id)

    def _update(self, case: Case, change: str, key: str, previous_ward: str | None = None) -> Event:
        return updated_event(case, change, SYSTEM, f"tu-{key}", case.last_message_at, previous_ward)
