"""Deciding a batch message by message (`Planner`), over a working copy of the snapshot.

Messages of one batch are decided in order against `Working`, the snapshot as the batch
changes it, so a second message of a tipster joins the case their first one opened and a case
opened earlier in the batch is a duplicate candidate for a later one. When a message needs a
case the snapshot lacks (a duplicate candidate's), deciding it stops before it changes
anything (`NeedCases`); given the case, the planner goes on from that message. Pure: no I/O.
"""

from datetime import datetime
from typing import TYPE_CHECKING

from services.reports.cases import Case
from services.reports.duplicates import RECENT_LIMIT, Fingerprint
from services.reports.intake_plan import Arrival, Join, Plan, Snapshot, TipsterState

if TYPE_CHECKING:
    from services.reports.intake_core import IntakeCore


class NeedCases(Exception):
    """A decision needs cases the snapshot does not hold (caught by the `Planner`)."""

    def __init__(self, case_ids: set[str]) -> None:
        super().__init__(case_ids)
        self.case_ids = case_ids


class Planner:
    """Decides a batch message by message, stopping where a message needs cases it lacks;
    given them (`learn`), it goes on from that message. Decided messages are never redone."""

    def __init__(self, core: "IntakeCore", snapshot: Snapshot) -> None:
        self.core = core
        self.work = Working(snapshot)
        self.plan = Plan()
        self.decided = 0

    def advance(self, arrivals: list[Arrival]) -> set[str]:
        """Decide the rest of `arrivals`; the ids of cases still needed, or an empty set."""
        while self.decided < len(arrivals):
            try:
                self.core.decide(arrivals[self.decided], self.work, self.plan)
            except NeedCases as need:
                return need.case_ids
            self.decided += 1
        return set()

    def learn(self, cases: dict[str, Case | None]) -> None:
        self.work.cases.update(cases)


class Working:
    """The snapshot as the batch changes it, message after message (never written back)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.seen = dict(snapshot.seen)
        self.tipsters = dict(snapshot.tipsters)
        self.cases = dict(snapshot.cases)
        self.fingerprints: dict[str, list[Fingerprint]] = {}
        for mark in snapshot.fingerprints:
            self.note_recent(mark)
        self.taken_refs = snapshot.taken_refs

    def case(self, case_id: str) -> Case | None:
        """The case, or None if it does not exist; raises `NeedCases` if unknown."""
        if case_id not in self.cases:
            raise NeedCases({case_id})
        return self.cases[case_id]

    def open_case(self, tipster: str, since: datetime) -> Case | None:
        """The tipster's open case if they last wrote at or after `since`."""
        state = self.tipsters.get(tipster)
        if state is None or state.open_case_id is None or state.last_message_at is None:
            return None
        if state.last_message_at < since:
            return None
        case = self.case(state.open_case_id)
        return case if case is not None and case.is_open else None

    def note_recent(self, mark: Fingerprint) -> None:
        """Keep a ward's `RECENT_LIMIT` newest cases as duplicate candidates, as the store does."""
        marks = self.fingerprints.setdefault(mark.ward, [])
        marks.append(mark)
        if len(marks) > RECENT_LIMIT:
            del marks[0]

    def recent(self, wards: tuple[str, ...] | None, since: datetime) -> list[Fingerprint]:
        """Duplicate candidates noted since `since` in `wards` (all wards if None)."""
        lists = (
            self.fingerprints.values()
            if wards is None
            else (self.fingerprints.get(ward, []) for ward in wards)
        )
        return [mark for marks in lists for mark in marks if mark.at >= since]

    def note_tipster(self, tipster: str, case_id: str, at: datetime) -> None:
        self.tipsters[tipster] = TipsterState(
            pseudonym=tipster, open_case_id=case_id, last_message_at=at
        )


def is_open(candidate: Fingerprint, work: Working) -> bool:
    """Whether a duplicate candidate's case is open, as far as the batch knows."""
    if candidate.case_id in work.cases:
        case = work.cases[candidate.case_id]
        return case is not None and case.is_open
    return candidate.ref is not None


def apply_join(case: Case, join: Join) -> Case:
    """The case as the store holds it after `join`."""
    pushed = {
        "messages": [*case.messages, join.message],
        "message_ids": [*case.message_ids, join.message.event_id],
    }
    return case.model_copy(update={**pushed, **join.fields()})
