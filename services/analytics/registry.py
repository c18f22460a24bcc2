"""The ward and group registry (operator data) and coverage computed from it."""

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class Registry(BaseModel):
    model_config = ConfigDict(frozen=True)

    demo: bool = False
    wards: tuple[Ward, ...] = ()
    groups: tuple[Group, ...] = ()


class CoverageRow(BaseModel):
    ward: str
    name: str
    groups: int
    members: int
    members_change: int
    households_covered: int
    households_total: int | None
    percent: float | None


def load_registry(path: Path) -> Registry:
    """Read a registry file; a file that fails validation raises with the reason."""
    return Registry.model_validate(json.loads(path.read_text(encoding="utf-8")))


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


def registry_documents(registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wards = [{"_id": w.slug, **w.model_dump(), "demo": registry.demo} for w in registry.wards]
    groups = [{"_id": g.id, **g.model_dump(), "demo": registry.demo} for g in registry.groups]
    return wards, groups
