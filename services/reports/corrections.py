"""Staff re-triage as training data: a corrected case's text with the labels staff gave it.

Corrections hold citizens' words, so they live only in this deployment's MongoDB (collection
`triage_corrections`) and reach only a model trained here (`python -m services.reports.train`).
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.reports.cases import Case
from services.reports.corpus import Example
from shared.text import mask_phones

CORRECTIONS_AUTHOR = "corrections"  # one cross-validation group of their own
RETRIAGE_FIELDS = ("kind", "category", "priority", "ward")


def is_retriage(changes: dict[str, Any]) -> bool:
    """A change that corrects triage, as opposed to only copying the case to other wards."""
    return any(name in changes for name in RETRIAGE_FIELDS)


def correction_of(case: Case, by: str, at: datetime) -> dict[str, Any]:
    """The document kept for a corrected case (one per case: the latest correction wins)."""
    return {
        "_id": case.id,
        "text": mask_phones(case.text),
        "kind": case.kind.value,
        "category": case.category.value,
        "priority": case.priority.value,
        "ward": case.ward,
        "corrected_by": by,
        "corrected_at": at,
    }


def examples_from(documents: Iterable[dict[str, Any]]) -> list[Example]:
    return [
        Example.from_json(
            {**doc, "id": f"correction-{doc['_id']}", "style": "correction"}, CORRECTIONS_AUTHOR
        )
        for doc in documents
        if doc.get("text")
    ]
