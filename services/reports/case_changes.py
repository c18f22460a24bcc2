"""What staff changes do to a case, decided without I/O (`desk.py` loads and performs)."""

from datetime import datetime
from typing import Any

from services.reports.cases import Case, CaseError, check_transition
from services.reports.outgoing import StagedEvent, triaged_event, updated_event
from shared.events.tips import CaseStatus, Outcome, TipCategory, TipKind, TipPriority
from shared.subjects import tips_triaged_subject, tips_updated_subject


def transition_changes(
    case: Case,
    target: CaseStatus,
    outcome: Outcome | None,
    merged_into: str | None,
    original: Case | None,
    assignee: str | None,
    actor: str,
) -> dict[str, Any]:
    """The fields a status change sets; `original` is the case `merged_into` names (loaded)."""
    check_transition(case, target, outcome, merged_into)
    changes: dict[str, Any] = {"status": target, "outcome": outcome}
    if target == CaseStatus.DUPLICATE and merged_into:
        if original is None:
            raise CaseError("Không tìm thấy tin báo.", 404)
        if not original.is_open:
            raise CaseError(f"Tin báo gốc {original.ref} đã đóng, không thể gộp.")
        changes["merged_into"] = original.id
    if target == CaseStatus.ASSIGNED:
        changes["assignee"] = assignee or actor
    return changes


def retriage_changes(
    case: Case,
    *,
    kind: TipKind | None,
    category: TipCategory | None,
    priority: TipPriority | None,
    ward: str | None,
    new_info: list[str],
) -> dict[str, Any]:
    """The fields a re-triage by hand sets: `ward` is a new ward (checked), `new_info` the
    wards newly told for information (checked)."""
    changes: dict[str, Any] = {}
    for name, value in (("kind", kind), ("category", category), ("priority", priority)):
        if value is not None:
            changes[name] = value
    if ward is not None:
        changes |= {"ward": ward, "ward_source": "staff"}
    if new_info:
        changes["info_wards"] = [*case.info_wards, *new_info]
    if not changes:
        raise CaseError("Không có thay đổi nào.", 422)
    return changes


def retriage_events(
    before: Case,
    updated: Case,
    changes: dict[str, Any],
    new_info: list[str],
    actor: str,
    key: str,
    at: datetime,
) -> list[StagedEvent]:
    """What a re-triage tells: the change to the case's ward; a new ward's card and the old
    ward's notice of the move; a copy for each ward newly told for information."""
    retriaged = updated_event(updated, "retriaged", actor, f"tu-{key}", at)
    staged = [StagedEvent.of(retriaged, tips_updated_subject(updated.ward), updated.id)]
    if "ward" in changes:
        moved = updated_event(
            updated, "rerouted", actor, f"tu-{key}-mv", at, previous_ward=before.ward
        )
        card = _card(updated, updated.ward, key, info_only=False)
        staged += [StagedEvent.of(moved, tips_updated_subject(before.ward), updated.id), card]
    staged += [_card(updated, other, key, info_only=True) for other in new_info]
    return staged


def _card(case: Case, ward: str, key: str, info_only: bool) -> StagedEvent:
    # A card of its own id: the ward may have had one of this case before.
    card = triaged_event(case, ward, info_only).model_copy(
        update={"event_id": f"tt-{case.id}-{ward}-{key}"}
    )
    return StagedEvent.of(card, tips_triaged_subject(ward, case.priority), case.id)
