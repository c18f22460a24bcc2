"""The registry of Zalo groups: the model, the wards it knows, and CSV import (pure)."""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.broadcast.domain import Channel, Targets
from shared.events.broadcast import RegistryGroupChanged
from shared.text import SafeLine, strip_controls

# Wards and communes of Đồng Hới (slug → name), from the city's administrative list.
WARDS: dict[str, str] = {
    "bac-ly": "Bắc Lý",
    "bac-nghia": "Bắc Nghĩa",
    "dong-hai": "Đồng Hải",
    "dong-phu": "Đồng Phú",
    "dong-son": "Đồng Sơn",
    "duc-ninh-dong": "Đức Ninh Đông",
    "hai-thanh": "Hải Thành",
    "nam-ly": "Nam Lý",
    "phu-hai": "Phú Hải",
    "bao-ninh": "Bảo Ninh",
    "duc-ninh": "Đức Ninh",
    "loc-ninh": "Lộc Ninh",
    "nghia-ninh": "Nghĩa Ninh",
    "quang-phu": "Quang Phú",
    "thuan-duc": "Thuận Đức",
}
WARD_SLUGS = frozenset(WARDS)


class Group(BaseModel):
    """A Zalo group notices go to. `officer_id` is the responsible officer's Zalo user id."""

    model_config = ConfigDict(frozen=True)

    group_id: str = Field(pattern=r"^[0-9A-Za-z_-]{1,40}$")
    name: SafeLine = Field(min_length=1, max_length=200)
    ward: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,60}$")
    hamlet: SafeLine | None = Field(default=None, max_length=200)  # thôn / tổ dân phố
    member_count: int = Field(default=0, ge=0, le=1_000_000)
    households: int | None = Field(default=None, ge=0, le=1_000_000)
    officer_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,40}$")
    officer_name: SafeLine | None = Field(default=None, max_length=200)
    channel: Channel = Channel.OA
    active: bool = True
    is_test: bool = False


class RosterEntry(NamedTuple):
    """What planning needs of an active group: one row of the registry's roster snapshot."""

    group_id: str
    name: str
    ward: str | None
    channel: str
    officer_id: str | None
    officer_name: str | None
    is_test: bool


def roster_entry(group: Group) -> RosterEntry:
    return RosterEntry(
        group.group_id,
        group.name,
        group.ward,
        group.channel.value,
        group.officer_id,
        group.officer_name,
        group.is_test,
    )


def select_targets(
    roster: Iterable[RosterEntry], targets: Targets, test_mode: bool
) -> list[RosterEntry]:
    """The groups of an (active-only) roster that a notice's targets name, in roster order;
    test mode keeps only test groups."""
    wards, ids = set(targets.wards), set(targets.groups)
    if not (targets.all_groups or wards or ids):
        return []
    return [
        entry
        for entry in roster
        if (entry.is_test or not test_mode)
        and (targets.all_groups or entry.ward in wards or entry.group_id in ids)
    ]


class RowError(BaseModel):
    row: int  # 1-based line number in the file, header = 1
    errors: list[str]


CSV_COLUMNS = (
    "group_id",
    "name",
    "ward",
    "hamlet",
    "member_count",
    "households",
    "officer_id",
    "officer_name",
    "channel",
    "active",
    "is_test",
)
_REQUIRED = {"group_id", "name", "ward", "channel"}
_TRUE = {"1", "true", "yes", "có", "co", "x"}
_FALSE = {"0", "false", "no", "không", "khong", ""}


def _flag(value: str, column: str) -> bool:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"{column}: «{value}» không phải có/không.")


def _row_to_group(row: dict[str, str]) -> Group:
    values: dict[str, object] = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
    for column in ("hamlet", "officer_id", "officer_name", "households"):
        if values.get(column) == "":
            values[column] = None
    values["member_count"] = values.get("member_count") or 0
    values["active"] = _flag(str(values.get("active", "1") or "1"), "active")
    values["is_test"] = _flag(str(values.get("is_test", "")), "is_test")
    group = Group.model_validate(values)
    if group.ward not in WARD_SLUGS:
        raise ValueError(f"ward: «{group.ward}» không phải phường/xã của Đồng Hới.")
    if group.channel == Channel.MANUAL and not group.officer_id:
        raise ValueError("officer_id: nhóm manual phải có cán bộ phụ trách.")
    return group


def _describe(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors()]
    return [str(exc)]


def parse_groups_csv(text: str) -> tuple[list[Group], list[RowError]]:
    """Every row as a group, or the errors of each bad row (then nothing may be imported)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _parse_rows(reader)
    except csv.Error as exc:  # a field over csv's limit, a NUL byte: the file, not a row
        return [], [RowError(row=reader.line_num, errors=[f"CSV không đọc được: {exc}"])]


def _parse_rows(reader: "csv.DictReader[str]") -> tuple[list[Group], list[RowError]]:
    missing = _REQUIRED - set(reader.fieldnames or ())
    if missing:
        return [], [RowError(row=1, errors=[f"thiếu cột: {', '.join(sorted(missing))}"])]
    groups: list[Group] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        try:
            group = _row_to_group(row)
        except (ValueError, ValidationError) as exc:
            errors.append(RowError(row=line, errors=_describe(exc)))
            continue
        if group.group_id in seen:
            errors.append(RowError(row=line, errors=[f"group_id {group.group_id} bị trùng."]))
        seen.add(group.group_id)
        groups.append(group)
    if not groups and not errors:
        errors.append(RowError(row=1, errors=["tệp không có dòng dữ liệu."]))
    return groups, errors


_JOINED = {"user_join_group", "accept_request_join_group", "react_request_join_group_accept"}
_LEFT = {"user_out_group", "user_leave_group", "remove_member_group", "user_remove_group"}
_GONE = {"delete_group", "disperse_group", "disband_group"}
_INFO = {"create_group", "update_group_info"}


def membership_change(event_name: str) -> int | None:
    """+1 when a member joined, -1 when one left, None for other events."""
    if event_name in _JOINED:
        return 1
    return -1 if event_name in _LEFT else None


def group_event_update(
    event_name: str, payload: dict[str, object] | None
) -> tuple[bool, str | None] | None:
    """What a lifecycle event makes of a group: (active, its new name or None), or None for an
    event that is not one."""
    if event_name in _GONE:
        return False, None
    if event_name not in _INFO:
        return None
    body = payload or {}
    name = body.get("group_name") or body.get("name")
    # A Zalo group name is outside text: stored as one clean line, so the registry (which
    # refuses control characters) can always read it back.
    clean = strip_controls(name, keep_newlines=False).strip()[:200] if isinstance(name, str) else ""
    return True, clean or None


class MembershipChange(NamedTuple):
    """A member joined (+1) or left (-1) a group at `at`."""

    group_id: str
    user_id: str
    step: int
    at: datetime


class LifecycleChange(NamedTuple):
    """A group was created or renamed (`active`, with its `name` when Zalo gave one) or
    disbanded (not `active`) at `at`. A created or renamed group the registry does not know
    yet is added to it (`GroupStore.apply`), a disbanded one is not."""

    group_id: str
    active: bool
    name: str | None
    at: datetime


def group_event_change(
    event_name: str,
    group_id: str | None,
    user_id: str | None,
    payload: dict[str, object] | None,
    at: datetime,
) -> MembershipChange | LifecycleChange | None:
    """What a Zalo group event changes in the registry; None when it changes nothing (no group
    id, a membership event without a member, or an event the registry does not follow)."""
    if not group_id:
        return None
    step = membership_change(event_name)
    if step is not None and user_id:
        return MembershipChange(group_id, user_id, step, at)
    change = group_event_update(event_name, payload)
    if change is None:
        return None
    return LifecycleChange(group_id, *change, at)


def registry_changes(
    groups: Iterable[tuple[Group, datetime]], announced: Mapping[str, str]
) -> list[RegistryGroupChanged]:
    """The groups (with the time of their last change) whose content differs from what was
    last announced (`announced`: group id → content hash, see `content_hash`), as events;
    every group the first time.

    The id is the group and the time of its change: replicas announcing the same state agree
    on it, and a group that changes back to an earlier state still gets a new one."""
    changes = []
    for group, changed_at in groups:
        content = group.model_dump(mode="json", exclude={"officer_id", "officer_name"})
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        if announced.get(group.group_id) == digest:
            continue
        changes.append(
            RegistryGroupChanged(
                event_id=f"{group.group_id}:{changed_at.isoformat()}:{digest}",
                occurred_at=changed_at,
                changed_at=changed_at,
                **content,
            )
        )
    return changes


def content_hash(event: RegistryGroupChanged) -> str:
    return event.event_id.rsplit(":", 1)[1]
