"""The two-person rule as a pure decision: from the planned roster, whatever the spelling."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.broadcast.approval import (
    has_two_people,
    may_send,
    needs_approval,
    planned_wards,
    ward_moves,
)
from services.broadcast.domain import (
    Category,
    Certainty,
    MsgType,
    Notice,
    NoticeStatus,
    Severity,
    Targets,
    Urgency,
)
from services.broadcast.groups import WARD_SLUGS, Group, RosterEntry, select_targets

WARDS = sorted(WARD_SLUGS)


def entry(group_id: str, ward: str | None, is_test: bool = False) -> RosterEntry:
    return RosterEntry(group_id, f"Nhóm {group_id}", ward, "oa", None, None, is_test)


def city_roster() -> list[RosterEntry]:
    return [entry(f"g{n}-{w}", w) for w in WARDS for n in range(2)]


def notice(
    targets: Targets,
    msg_type: MsgType = MsgType.ALERT,
    approved_by: str | None = None,
    test_mode: bool = False,
) -> Notice:
    return Notice(
        id="n1",
        title="Cảnh báo",
        body="Nội dung",
        category=Category.FRAUD_WARNING,
        severity=Severity.SEVERE,
        urgency=Urgency.EXPECTED,
        certainty=Certainty.LIKELY,
        targets=targets,
        test_mode=test_mode,
        msg_type=msg_type,
        status=NoticeStatus.READY,
        verification_code="CA-0001",
        created_by="u-editor",
        created_at=datetime(2026, 12, 4, tzinfo=UTC),
        approved_by=approved_by,
    )


class TestSpellings:
    """Finding 1 (a), (b), followers: every spelling that reaches every ward is held."""

    def test_every_group_listed_by_id(self) -> None:
        roster = city_roster()
        targets = Targets(groups=[e.group_id for e in roster])
        assert needs_approval(MsgType.ALERT, targets, False, roster)

    def test_fourteen_wards_plus_the_fifteenth_by_id(self) -> None:
        roster = city_roster()
        last = WARDS[-1]
        ids = [e.group_id for e in roster if e.ward == last][:1]
        targets = Targets(wards=WARDS[:-1], groups=ids)
        assert needs_approval(MsgType.ALERT, targets, False, roster)

    def test_fourteen_wards_alone_go_out(self) -> None:
        assert not needs_approval(MsgType.ALERT, Targets(wards=WARDS[:-1]), False, city_roster())

    def test_followers_reach_every_ward(self) -> None:
        targets = Targets(wards=WARDS[:1], followers=True)
        assert needs_approval(MsgType.ALERT, targets, False, city_roster())
        # test mode never reaches followers
        assert not needs_approval(MsgType.ALERT, targets, True, city_roster())

    def test_literal_all_groups_even_on_an_empty_registry(self) -> None:
        assert needs_approval(MsgType.ALERT, Targets(all_groups=True), False, [])

    def test_update_of_an_approved_notice_needs_approval_again(self) -> None:
        original = notice(Targets(all_groups=True), approved_by="u-approver")
        update = Targets(wards=WARDS[:1])  # even if its own spelling looks small
        assert needs_approval(MsgType.UPDATE, update, False, city_roster(), original)

    def test_cancel_never_waits(self) -> None:
        original = notice(Targets(all_groups=True), approved_by="u-approver")
        assert not needs_approval(
            MsgType.CANCEL, Targets(all_groups=True), False, city_roster(), original
        )

    def test_self_approval_is_not_two_people(self) -> None:
        own = notice(Targets(all_groups=True), approved_by="u-editor")
        assert not has_two_people(own)
        assert not may_send(own, city_roster())


class TestWardMoves:
    def test_moving_a_known_group_is_a_move_assigning_one_is_not(self) -> None:
        current = {"a": "bac-ly", "b": None}
        incoming = [
            Group(group_id="a", name="A", ward="dong-hai"),
            Group(group_id="b", name="B", ward="dong-hai"),
            Group(group_id="c", name="C", ward="dong-hai"),
        ]
        moves = ward_moves(current, incoming)
        assert [(m.group_id, m.from_ward, m.to_ward) for m in moves] == [
            ("a", "bac-ly", "dong-hai")
        ]

    def test_same_ward_is_no_move(self) -> None:
        assert ward_moves({"a": "bac-ly"}, [Group(group_id="a", name="A", ward="bac-ly")]) == []


# --- the property: anything that reaches every ward has two distinct people on it -------------

GROUP_IDS = [f"g{n}" for n in range(40)]
wards_or_none = st.one_of(st.none(), st.sampled_from(WARDS))


@st.composite
def registries(draw: st.DrawFn) -> dict[str, tuple[str | None, bool]]:
    """group id -> (ward, is_test); sometimes one group in every ward, so spellings matter."""
    ids = draw(st.lists(st.sampled_from(GROUP_IDS), unique=True, max_size=40))
    is_test = st.sampled_from([False, False, False, True])
    registry = {g: (draw(wards_or_none), draw(is_test)) for g in ids}
    if draw(st.booleans()):  # a full city: every ward has a group
        for n, ward in enumerate(WARDS):
            registry[f"g{n + 20}"] = (ward, draw(is_test))
    return registry


@st.composite
def spellings(draw: st.DrawFn, registry: dict[str, tuple[str | None, bool]]) -> Targets:
    known = sorted(registry)
    ids = draw(st.lists(st.sampled_from([*known, "unknown-1", "g39"]), max_size=45))
    style = draw(st.sampled_from(["ids", "wards", "mixed", "all", "every-ward-but", "followers"]))
    if style == "all":
        return Targets(all_groups=True)
    if style == "ids":
        ids = ids or known or ["unknown-1"]
        if draw(st.booleans()):
            ids = [*known, "unknown-1"]  # every group by id
        return Targets(groups=ids)
    wards = draw(st.lists(st.sampled_from(WARDS), max_size=15))
    if style == "every-ward-but":
        skipped = draw(st.sampled_from(WARDS))
        wards = [w for w in WARDS if w != skipped]
        ids = [g for g, (w, _) in registry.items() if w == skipped][:1] + ids[:2]
    followers = style == "followers" or (draw(st.booleans()) and draw(st.booleans()))
    ids = ids if style != "wards" else []
    if not (wards or ids or followers):
        wards = [WARDS[0]]
    return Targets(wards=wards, groups=ids, followers=followers)


def edit(registry: dict[str, tuple[str | None, bool]], moves: list[tuple[str, str | None]]) -> None:
    """Registry edits between creation and sending: moves, new groups, unassignments."""
    for group_id, ward in moves:
        registry[group_id] = (ward, registry.get(group_id, (None, False))[1])


def roster_of(registry: dict[str, tuple[str | None, bool]]) -> list[RosterEntry]:
    return sorted(entry(g, w, t) for g, (w, t) in registry.items())


def reach(roster: list[RosterEntry], targets: Targets, test_mode: bool) -> frozenset[str]:
    """What the planner would actually send to: an independent count (not planned_wards)."""
    reached = {e.ward for e in select_targets(roster, targets, test_mode) if e.ward}
    if targets.followers and not test_mode:
        reached |= WARD_SLUGS  # a follower broadcast reaches residents of every ward
    return frozenset(reached)


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_every_ward_only_with_two_people(data: st.DataObject) -> None:
    registry = data.draw(registries())
    targets = data.draw(spellings(registry))
    test_mode = data.draw(st.booleans())
    creator = "u-editor"
    # at creation: the service holds the notice, or lets it go
    held = needs_approval(MsgType.ALERT, targets, test_mode, roster_of(registry))
    approver = data.draw(st.sampled_from([None, creator, "u-approver"])) if held else None
    if held and approver in (None, creator):
        approver = None  # approve() refuses the creator; unapproved notices stay held
    if held and approver is None:
        return  # never reaches the planner
    moves = data.draw(st.lists(st.tuples(st.sampled_from(GROUP_IDS), wards_or_none), max_size=20))
    edit(registry, moves)
    roster = roster_of(registry)
    planned = notice(targets, approved_by=approver, test_mode=test_mode)
    if not may_send(planned, roster):
        return  # held again at send time
    if reach(roster, targets, test_mode) >= WARD_SLUGS:
        assert has_two_people(planned), (targets, roster)
        assert planned.approved_by != planned.created_by


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_planned_wards_are_what_the_plan_reaches(data: st.DataObject) -> None:
    registry = data.draw(registries())
    targets = data.draw(spellings(registry))
    test_mode = data.draw(st.booleans())
    roster = roster_of(registry)
    assert planned_wards(roster, targets, test_mode) == reach(roster, targets, test_mode)
