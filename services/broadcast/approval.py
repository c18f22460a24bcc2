"""The two-person rule: a notice that reaches every ward goes out only with a second person's
approval. Decided from the planned roster (the wards its resolved groups and followers
cover), never from how the targets are spelled: listing every group by id, or 14 wards plus
the 15th ward's groups, reaches every ward as surely as `all_groups`. No I/O here."""

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from services.broadcast.domain import MsgType, Notice, Targets
from services.broadcast.groups import WARD_SLUGS, Group, RosterEntry, select_targets


def planned_wards(
    roster: Iterable[RosterEntry], targets: Targets, test_mode: bool
) -> frozenset[str]:
    """The wards a notice would reach on this roster. Followers count as every ward: Zalo
    targets them by age, gender and province, never by ward, so a follower broadcast reaches
    residents of the whole city."""
    if targets.followers and not test_mode:
        return WARD_SLUGS
    selected = select_targets(roster, targets, test_mode)
    return frozenset(entry.ward for entry in selected if entry.ward is not None)


def reaches_every_ward(
    roster: Iterable[RosterEntry],
    targets: Targets,
    test_mode: bool,
    wards: frozenset[str] = WARD_SLUGS,
) -> bool:
    """True when the spelling names every ward (even where the registry has no group yet) or
    the planned roster covers every ward."""
    return targets.reaches_every_ward(wards) or wards <= planned_wards(roster, targets, test_mode)


def needs_approval(
    msg_type: MsgType,
    targets: Targets,
    test_mode: bool,
    roster: Iterable[RosterEntry],
    original: Notice | None = None,
) -> bool:
    """Alerts that reach every ward need a second person. An update sends new text to what
    its original reached, so it needs one whenever the original did (or reaches every ward
    itself). A cancel never waits: withdrawing a wrong notice must be fast; it is audited."""
    if msg_type == MsgType.CANCEL:
        return False
    if msg_type == MsgType.UPDATE and original is not None and original.approved_by is not None:
        return True
    return reaches_every_ward(roster, targets, test_mode)


def has_two_people(notice: Notice) -> bool:
    return notice.approved_by is not None and notice.approved_by != notice.created_by


def may_send(notice: Notice, roster: Iterable[RosterEntry], original: Notice | None = None) -> bool:
    """The send-time check against the registry as it is then: the roster may have changed
    since the notice was created (groups moved, added, imported)."""
    if has_two_people(notice):
        return True
    return not needs_approval(notice.msg_type, notice.targets, notice.test_mode, roster, original)


class WardMove(NamedTuple):
    group_id: str
    from_ward: str
    to_ward: str | None


def ward_moves(current: Mapping[str, str | None], incoming: Iterable[Group]) -> list[WardMove]:
    """Registry writes that move a known group from its ward to another (or to none). Giving a
    ward to a new or unassigned group is not a move: that is how groups first get one."""
    return [
        WardMove(group.group_id, old, group.ward)
        for group in incoming
        if (old := current.get(group.group_id)) is not None and old != group.ward
    ]
