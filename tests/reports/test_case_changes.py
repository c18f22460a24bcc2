"""Staff changes to a case without servers: status changes and re-triage by hand, as tables."""

from datetime import UTC, datetime
from typing import Any

import pytest

from services.reports.case_changes import retriage_changes, retriage_events, transition_changes
from services.reports.cases import Case, CaseError
from shared.events.tips import CaseStatus, Outcome, TipCategory, TipKind, TipPriority
from tests.reports.builders import make_case

AT = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def case(status: CaseStatus = CaseStatus.NEW, case_id: str = "c1", **fields: Any) -> Case:
    return make_case(status, id=case_id, ref=f"BY-{case_id.upper()}", **fields)


OPEN_ORIGINAL = case(case_id="c0")
CLOSED_ORIGINAL = case(CaseStatus.RESOLVED, case_id="c0", outcome=Outcome.VERIFIED_HANDLED)

TRANSITIONS = [
    # (name, from, to, outcome, merged_into, original, assignee, expected changes or error)
    ("assign to someone", CaseStatus.NEW, CaseStatus.ASSIGNED, None, None, None, "o-2",
     {"status": CaseStatus.ASSIGNED, "outcome": None, "assignee": "o-2"}),
    ("assign to oneself", CaseStatus.NEW, CaseStatus.ASSIGNED, None, None, None, None,
     {"status": CaseStatus.ASSIGNED, "outcome": None, "assignee": "d-1"}),
    ("verify", CaseStatus.ASSIGNED, CaseStatus.VERIFYING, None, None, None, None,
     {"status": CaseStatus.VERIFYING, "outcome": None}),
    ("resolve", CaseStatus.VERIFYING, CaseStatus.RESOLVED, Outcome.VERIFIED_HANDLED, None, None,
     None, {"status": CaseStatus.RESOLVED, "outcome": Outcome.VERIFIED_HANDLED}),
    ("merge into an open case", CaseStatus.NEW, CaseStatus.DUPLICATE, None, "c0", OPEN_ORIGINAL,
     None, {"status": CaseStatus.DUPLICATE, "outcome": None, "merged_into": "c0"}),
    ("merge into a closed case", CaseStatus.NEW, CaseStatus.DUPLICATE, None, "c0",
     CLOSED_ORIGINAL, None, 409),
    ("merge into a missing case", CaseStatus.NEW, CaseStatus.DUPLICATE, None, "c9", None, None,
     404),
    ("resolve without outcome", CaseStatus.ASSIGNED, CaseStatus.RESOLVED, None, None, None, None,
     422),
    ("leave a closed status", CaseStatus.RESOLVED, CaseStatus.ASSIGNED, None, None, None, None,
     409),
]  # fmt: skip


@pytest.mark.parametrize(
    ("start", "target", "outcome", "merged_into", "original", "assignee", "expected"),
    [row[1:] for row in TRANSITIONS],
    ids=[row[0] for row in TRANSITIONS],
)
def test_transition(
    start: CaseStatus,
    target: CaseStatus,
    outcome: Outcome | None,
    merged_into: str | None,
    original: Case | None,
    assignee: str | None,
    expected: dict[str, Any] | int,
) -> None:
    before = case(start, outcome=Outcome.VERIFIED_HANDLED if start == CaseStatus.RESOLVED else None)
    if isinstance(expected, int):
        with pytest.raises(CaseError) as refused:
            transition_changes(before, target, outcome, merged_into, original, assignee, "d-1")
        assert refused.value.status_code == expected
    else:
        changes = transition_changes(
            before, target, outcome, merged_into, original, assignee, "d-1"
        )
        assert changes == expected


RETRIAGES = [
    # (name, kind, category, priority, ward, new info wards, expected changes, events)
    ("priority", None, None, TipPriority.URGENT, None, [], {"priority": TipPriority.URGENT},
     ["retriaged@tips.updated.quang-phu"]),
    ("kind and category", TipKind.HELP, TipCategory.OTHER, None, None, [],
     {"kind": TipKind.HELP, "category": TipCategory.OTHER}, ["retriaged@tips.updated.quang-phu"]),
    ("new ward", None, None, None, "bac-ly", [], {"ward": "bac-ly", "ward_source": "staff"},
     ["retriaged@tips.updated.bac-ly", "rerouted@tips.updated.quang-phu",
      "card@tips.triaged.bac-ly.normal"]),
    ("wards told for information", None, None, None, None, ["loc-ninh"],
     {"info_wards": ["nam-ly", "loc-ninh"]},
     ["retriaged@tips.updated.quang-phu", "card@tips.triaged.loc-ninh.normal(info)"]),
    ("nothing", None, None, None, None, [], None, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "category", "priority", "ward", "new_info", "expected", "events"),
    [row[1:] for row in RETRIAGES],
    ids=[row[0] for row in RETRIAGES],
)
def test_retriage(
    kind: TipKind | None,
    category: TipCategory | None,
    priority: TipPriority | None,
    ward: str | None,
    new_info: list[str],
    expected: dict[str, Any] | None,
    events: list[str],
) -> None:
    before = case(info_wards=["nam-ly"])
    fields = {"kind": kind, "category": category, "priority": priority, "ward": ward}
    if expected is None:
        with pytest.raises(CaseError) as refused:
            retriage_changes(before, **fields, new_info=new_info)  # type: ignore[arg-type]
        assert refused.value.status_code == 422
        return
    changes = retriage_changes(before, **fields, new_info=new_info)  # type: ignore[arg-type]
    assert changes == expected
    updated = before.model_copy(update=changes)
    staged = retriage_events(before, updated, changes, new_info, "d-1", "k1", AT)
    shown = [
        f"{s.payload.get('change', 'card')}@{s.subject}"
        + ("(info)" if s.payload.get("info_only") else "")
        for s in staged
    ]
    assert shown == events
    assert len({s.event_id for s in staged}) == len(staged)  # each event its own id
