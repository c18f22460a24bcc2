"""Wards and groups as analytics sees them, and coverage computed from them.

Groups come from broadcast's registry (`RegistryGroupChanged` events, the one source of truth
for groups); wards and their households from the gazetteer's unit file (operator data)."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.analytics.increments import Fact
from shared.events.broadcast import RegistryGroupChanged
from shared.places import SET_BEFORE, Gazetteer

# One document per announced version of a group (keyed by the event id): inserts only, so a
# replayed event changes nothing, and the latest `changed_at` of a group is its state.
REGISTRY_GROUPS = "registry_group_versions"


class Ward(BaseModel):
    """A ward with its total number of households (None while the operator has not set it)."""

    model_config = ConfigDict(frozen=True)

    slug: str
    name: str
    households: int | None = Field(default=None, ge=0)


class Group(BaseModel):
    """An OA-owned Zalo group of a ward, with the members and households it reaches."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    ward: str
    members: int = Field(default=0, ge=0)
    households: int = Field(default=0, ge=0)


class CoverageRow(BaseModel):
    ward: str
    name: str
    groups: int
    members: int
    members_change: int
    households_covered: int
    households_total: int | None
    percent: float | None


def registry_fact(event: RegistryGroupChanged) -> Fact:
    """One announced version of a group, kept as it was announced."""
    state = event.model_dump(
        mode="json", include={"group_id", "name", "ward", "member_count", "households"}
    )
    state |= {"counted": event.active and not event.is_test}
    return Fact(REGISTRY_GROUPS, event.event_id, state, {"changed_at": event.changed_at})


def latest_groups(versions: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Each group's latest announced version, if it counts (active, not a test group) and has
    a ward; sorted by id."""
    latest: dict[str, Mapping[str, Any]] = {}
    for doc in versions:
        known = latest.get(doc["group_id"])
        if known is None or (doc["changed_at"], doc["_id"]) > (known["changed_at"], known["_id"]):
            latest[doc["group_id"]] = doc
    return [
        Group(
            id=group_id,
            name=doc["name"],
            ward=doc["ward"],
            members=doc["member_count"],
            households=doc.get("households") or 0,
        )
        for group_id, doc in sorted(latest.items())
        if doc["counted"] and doc.get("ward")
    ]


def wards_of(gazetteer: Gazetteer) -> list[Ward]:
    """The former units (the registry's wards), with the households the unit file gives them;
    `regroup` re-keys them to another unit set."""
    return [
        Ward(slug=unit.slug, name=unit.name, households=unit.households)
        for unit in gazetteer.units.values()
        if unit.unit_set == SET_BEFORE
    ]


def coverage(
    wards: Iterable[Ward], groups: Iterable[Group], member_changes: Mapping[str, int]
) -> list[CoverageRow]:
    """Per ward: groups, members, households covered against its total, as a percentage.

    Households covered are capped at the ward's total (groups overlap in practice)."""
    by_ward: dict[str, list[Group]] = {}
    for group in groups:
        by_ward.setdefault(group.ward, []).append(group)
    rows = []
    for ward in wards:
        own = by_ward.get(ward.slug, [])
        covered = sum(g.households for g in own)
        total = ward.households
        if total is not None:
            covered = min(covered, total)
        rows.append(
            CoverageRow(
                ward=ward.slug,
                name=ward.name,
                groups=len(own),
                members=sum(g.members for g in own),
                members_change=sum(member_changes.get(g.id, 0) for g in own),
                households_covered=covered,
                households_total=total,
                percent=round(100.0 * covered / total, 1) if total else None,
            )
        )
    return rows


def regroup(
    wards: Iterable[Ward],
    groups: Iterable[Group],
    unit_of: Callable[[str], str],
    name_of: Callable[[str], str],
) -> tuple[list[Ward], list[Group]]:
    """The registry re-keyed to another unit set (e.g. the 2025 wards through the crosswalk):
    households add up; a total stays unknown if any part of it is."""
    merged: dict[str, list[Ward]] = {}
    for ward in wards:
        merged.setdefault(unit_of(ward.slug), []).append(ward)
    new_wards = [
        Ward(
            slug=slug,
            name=name_of(slug),
            households=None
            if any(p.households is None for p in parts)
            else sum(p.households or 0 for p in parts),
        )
        for slug, parts in sorted(merged.items())
    ]
    new_groups = [g.model_copy(update={"ward": unit_of(g.ward)}) for g in groups]
    return new_wards, new_groups
