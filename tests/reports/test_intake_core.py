"""Intake's decision core without servers: every transition of `IntakeCore.plan`, as tables.

Each row is a batch of messages against a snapshot of the store, and what the plan must say:
each message's outcome, and the effects (cases inserted, joins, tipster notes, duplicate-list
notes, SLA watches, staged events by kind, ledger entries). The real model, rules and
gazetteer are used; only the store is replaced by the snapshot the orchestrator would load.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reports.app import load_gazetteer
from services.reports.cases import Case, case_id_for, reference_code
from services.reports.duplicates import fingerprint
from services.reports.intake_core import IntakeCore
from services.reports.intake_plan import (
    Arrival,
    IntakeConfig,
    IntakeRecord,
    Plan,
    Snapshot,
    TipsterState,
    case_message,
)
from services.reports.intake_planning import Planner
from services.reports.knowledge import KnowledgeBase
from services.reports.roster import Roster
from services.reports.settings import ReportsSettings
from services.reports.triage import Triager
from shared.events.tips import CaseStatus, TipKind, TipPriority
from shared.events.zalo import Attachment, MessageType, ZaloEventReceived
from shared.places import DEMO_PLACES_FILE
from tests.reports.builders import CITIZEN, NEIGHBOUR, message

T0 = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
GROUP = "7210493857261940582"
OFFICER = "o-qp-day"
TIPSTER = "p-citizen"
OTHER_TIPSTER = "p-neighbour"

THEFT_LAST_NIGHT = "Tối qua nhà em ở xã Quang Phú bị mất trộm con chó"  # tip, normal, quang-phu
FIGHT_NOW = "Đang có đánh nhau, có người bị chém chảy máu ở chợ xã Quang Phú"  # tip, urgent
THEFT_NO_PLACE = "Tối qua nhà em bị mất trộm con chó, giờ mới biết"  # tip, normal, unknown ward
KNIFE_NOW = "nó đang cầm dao dọa chủ nhà"  # makes a case urgent
PLACE_ONLY = "ở xã Quang Phú"
ID_CARD_QUESTION = "Cho em hỏi làm căn cước gắn chip cần mang giấy tờ gì ạ?"  # answered
OPEN_QUESTION = "Cho hỏi muốn tổ chức hội chợ ở sân vận động thì xin phép ai?"  # no answer
CHITCHAT = "chào anh chị, chúc buổi tối vui vẻ"
TWO_WARDS = "Trộm xe máy ở xã Lộc Ninh, hàng xóm phường Bắc Lý cũng bị"


@pytest.fixture(scope="module")
def core() -> IntakeCore:
    settings = ReportsSettings(places_extra_file=DEMO_PLACES_FILE)  # villages and centroids
    gazetteer = load_gazetteer(settings)
    triager = Triager.from_files(
        settings.triage_rules_file, settings.triage_model_file, settings.safety_rules_file
    )
    names = {u.slug: f"{u.kind} {u.name}" for u in gazetteer.current_units()}
    roster = {"loc-ninh": [{"officer": OFFICER, "start": "07:00", "end": "19:00"}]}
    config = IntakeConfig(
        group_window=timedelta(minutes=10),
        duplicate_window=timedelta(hours=2),
        duplicate_threshold=0.35,
        ref_prefix="BY",
        group_wards={GROUP: "duc-ninh"},
    )
    return IntakeCore(
        triager,
        gazetteer,
        KnowledgeBase.load(settings.knowledge_file, names),
        Roster.from_json(json.dumps(roster), "Asia/Ho_Chi_Minh"),
        config,
    )


def tip(text: str | None, *, minutes: float = 0, **kwargs: object) -> ZaloEventReceived:
    return message(text=text, at=T0 + timedelta(minutes=minutes), **kwargs)  # type: ignore[arg-type]


def arrival(event: ZaloEventReceived) -> Arrival:
    tipster = TIPSTER if event.user_id == CITIZEN else OTHER_TIPSTER
    return Arrival.of(event, tipster)


def opened(core: IntakeCore, event: ZaloEventReceived) -> Case:
    """The case `event` opens on an empty store."""
    [case] = core.plan([arrival(event)], Snapshot()).new_cases
    return case


def staged_kinds(plan: Plan) -> list[str]:
    """Each staged event as `<change or card>@<subject>`."""
    return [
        f"{item.payload.get('change', 'card')}@{item.subject}"
        + ("(info)" if item.payload.get("info_only") else "")
        for item in plan.staged
    ]


@dataclass
class Row:
    """A batch, the snapshot before it, and what the plan must hold."""

    name: str
    events: Callable[[], list[ZaloEventReceived]]
    snapshot: Callable[[IntakeCore, list[ZaloEventReceived]], Snapshot] = lambda core, ev: (
        Snapshot()
    )
    outcomes: list[str] = field(default_factory=list)
    new_cases: int = 0
    joins: int = 0
    tipsters: list[bool] = field(default_factory=list)  # each note's `first`
    fingerprints: int = 0
    sla: int = 0
    staged: list[str] = field(default_factory=list)
    records: int | None = None  # default: one per message
    check: Callable[[Plan, list[ZaloEventReceived]], None] | None = None


def with_open_case(
    text: str, *, minutes_ago: float = 1, status: CaseStatus | None = None
) -> Callable[[IntakeCore, list[ZaloEventReceived]], Snapshot]:
    """A snapshot where the citizen's earlier message `text` opened a case."""

    def build(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
        case = opened(core, tip(text, minutes=-minutes_ago))
        if status is not None:
            case = case.model_copy(update={"status": status})
        state = TipsterState(
            pseudonym=TIPSTER, open_case_id=case.id, last_message_at=case.last_message_at
        )
        return Snapshot(tipsters={TIPSTER: state}, cases={case.id: case})

    return build


def redelivered_opening(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
    """The case this very event opened, the tipster noted, the ledger entry never written."""
    case = opened(core, events[0])
    state = TipsterState(
        pseudonym=TIPSTER, open_case_id=case.id, last_message_at=case.last_message_at
    )
    return Snapshot(tipsters={TIPSTER: state}, cases={case.id: case})


def inserted_before_crash(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
    """The case this event opens exists (the insert happened), nothing else was written."""
    case = opened(core, events[0])
    return Snapshot(cases={case.id: case})


def ledger(outcome: str) -> Callable[[IntakeCore, list[ZaloEventReceived]], Snapshot]:
    def build(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
        event = events[0]
        case = opened(core, event) if outcome == "opened" else None
        record = IntakeRecord(
            event_id=event.event_id,
            case_id=case.id if case else None,
            outcome=outcome,
            at=event.received_at,
        )
        cases: dict[str, Case | None] = {case.id: case} if case else {}
        return Snapshot(seen={event.event_id: record}, cases=cases)

    return build


def neighbour_case(open_: bool) -> Callable[[IntakeCore, list[ZaloEventReceived]], Snapshot]:
    """Another tipster's case of the same incident, 5 minutes earlier, open or closed."""

    def build(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
        case = opened(core, tip(THEFT_LAST_NIGHT, minutes=-5, user_id=NEIGHBOUR))
        case = case.model_copy(update={"tipster": OTHER_TIPSTER})
        if not open_:
            case = case.model_copy(update={"status": CaseStatus.RESOLVED})
        mark = fingerprint(case, core.stopwords)
        return Snapshot(fingerprints=(mark,), cases={case.id: case})

    return build


def neighbour_case_unloaded(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
    """A duplicate candidate noted with its code, its case not loaded: open (closing a case
    takes it off the list)."""
    snapshot = neighbour_case(True)(core, events)
    return Snapshot(fingerprints=snapshot.fingerprints)


def neighbour_case_unknown(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
    """A duplicate candidate noted before codes were kept: its case must be loaded."""
    [mark] = neighbour_case(True)(core, events).fingerprints
    return Snapshot(fingerprints=(replace(mark, ref=None),))


def taken_ref(core: IntakeCore, events: list[ZaloEventReceived]) -> Snapshot:
    short = reference_code(case_id_for(events[0].event_id), "BY")
    return Snapshot(taken_refs=frozenset({short}))


def _check_reply(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [result] = plan.results
    [case] = plan.new_cases
    assert result.case_id == case.id == case_id_for(events[0].event_id)
    assert result.reply is not None
    assert case.ref in result.reply
    assert result.reply_key == f"{case.id}:received"
    assert (case.ward, case.ward_source, case.channel) == ("quang-phu", "text", "oa")
    assert plan.records[0].outcome == "opened"


def _check_answer(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [result] = plan.results
    assert result.reply
    assert result.reply_key == f"{events[0].event_id}:answer"
    assert result.reasons == ["knowledge.can-cuoc-cap-moi"]


def _check_group(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert (case.ward, case.ward_source, case.channel, case.group_id) == (
        "duc-ninh",
        "group",
        "group",
        GROUP,
    )
    assert plan.results[0].reply is None  # no private reply to a group message


def _check_assigned(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert (case.ward, case.status, case.assignee) == ("loc-ninh", CaseStatus.ASSIGNED, OFFICER)
    assert case.info_wards == ["bac-ly"]
    assert [h.change for h in case.history] == ["created", "assigned"]


def _check_duplicate(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert case.duplicate_of is not None
    assert case.history[-1].change == "duplicate_suggested"


def _check_not_duplicate(plan: Plan, events: list[ZaloEventReceived]) -> None:
    assert plan.new_cases[0].duplicate_of is None


def _check_missing(plan: Plan, events: list[ZaloEventReceived]) -> None:
    assert len(plan.missing) == 1


def _check_photo(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert (case.kind, case.priority) == (TipKind.TIP, TipPriority.NORMAL)
    assert case.reasons[0].rule == "kind.attachment"


def _check_location(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert (case.ward_source, case.reasons[-1].rule) == ("location", "ward.location")


def _check_long_ref(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert case.ref == reference_code(case.id, "BY", length=10)


def _check_retriage(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [join] = plan.joins
    assert join.retriage is not None
    assert join.retriage.priority == TipPriority.URGENT
    assert join.reasons is not None
    rules = {reason.rule for reason in join.reasons}
    assert {"ward.unit", "model.priority"} <= rules  # the ward reason survives retriage
    assert plan.sla[0].since == events[0].received_at


def _check_reroute(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [join] = plan.joins
    assert join.reroute is not None
    assert join.reroute.ward == "quang-phu"
    assert plan.fingerprints[0].ward == "quang-phu"
    assert join.retriage is None
    assert join.reasons is not None
    assert [r.rule for r in join.reasons if r.rule.startswith("ward.")] == ["ward.unit"]
    rerouted = plan.staged[-2].payload
    assert (rerouted["previous_ward"], rerouted["ward"]) == ("unknown", "quang-phu")


def _check_replayed_reply(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [result] = plan.results
    assert result.reply_key == f"{case_id_for(events[0].event_id)}:received"


def _check_same_case(plan: Plan, events: list[ZaloEventReceived]) -> None:
    [case] = plan.new_cases
    assert [r.case_id for r in plan.results] == [case.id, case.id]
    assert plan.joins[0].case_id == case.id


def _check_batch_duplicate(plan: Plan, events: list[ZaloEventReceived]) -> None:
    first, second = plan.new_cases
    assert second.duplicate_of == first.id


def _two_tipsters_same_incident() -> list[ZaloEventReceived]:
    return [
        tip(THEFT_LAST_NIGHT),
        tip(THEFT_LAST_NIGHT + " nữa", minutes=1, user_id=NEIGHBOUR),
    ]


def _same_event_twice() -> list[ZaloEventReceived]:
    event = tip(THEFT_LAST_NIGHT)
    return [event, event]


NEW = "card@tips.triaged.quang-phu.normal"
URGENT = "card@tips.triaged.quang-phu.urgent"
ADDED = "message_added@tips.updated.quang-phu"

ROWS = [
    # --- no case ---
    Row("verification code", lambda: [tip("Kiểm tra mã CA-7K2M9Q")],
        outcomes=["ignored_verification"]),
    Row("question answered", lambda: [tip(ID_CARD_QUESTION)], outcomes=["answered"],
        check=_check_answer),
    Row("question in a group", lambda: [tip(ID_CARD_QUESTION, group_id=GROUP)],
        outcomes=["ignored_question"]),
    Row("chit-chat", lambda: [tip(CHITCHAT)], outcomes=["ignored_other"]),
    # --- a new case ---
    Row("tip opens a case", lambda: [tip(THEFT_LAST_NIGHT)], outcomes=["opened"], new_cases=1,
        tipsters=[True], fingerprints=1, staged=[NEW], check=_check_reply),
    Row("unanswered question opens a case", lambda: [tip(OPEN_QUESTION)], outcomes=["opened"],
        new_cases=1, tipsters=[True], fingerprints=1, staged=["card@tips.triaged.unknown.normal"]),
    Row("urgent tip watches the SLA", lambda: [tip(FIGHT_NOW)], outcomes=["opened"], new_cases=1,
        tipsters=[True], fingerprints=1, sla=1, staged=[URGENT]),
    Row("group tip takes the group's ward", lambda: [tip(THEFT_NO_PLACE, group_id=GROUP)],
        outcomes=["opened"], new_cases=1, tipsters=[True], fingerprints=1,
        staged=["card@tips.triaged.duc-ninh.normal"], check=_check_group),
    Row("on-duty officer assigned, other ward told", lambda: [tip(TWO_WARDS)], outcomes=["opened"],
        new_cases=1, tipsters=[True], fingerprints=1,
        staged=["card@tips.triaged.loc-ninh.normal", "card@tips.triaged.bac-ly.normal(info)"],
        check=_check_assigned),
    Row("photo alone is a tip", lambda: [tip(None, message_type=MessageType.IMAGE,
        attachments=(Attachment(type=MessageType.IMAGE, url="https://example.invalid/p.jpg"),))],
        outcomes=["opened"], new_cases=1, tipsters=[True], fingerprints=1,
        staged=["card@tips.triaged.unknown.normal"], check=_check_photo),
    Row("shared location places a tip", lambda: [tip(THEFT_NO_PLACE, attachments=(Attachment(
        type=MessageType.LOCATION, latitude=17.4689, longitude=106.6223),))], outcomes=["opened"],
        new_cases=1, tipsters=[True], fingerprints=1, staged=["card@tips.triaged.dong-hai.normal"],
        check=_check_location),
    Row("taken reference code: the long one", lambda: [tip(THEFT_LAST_NIGHT)], taken_ref,
        outcomes=["opened"], new_cases=1, tipsters=[True], fingerprints=1, staged=[NEW],
        check=_check_long_ref),
    Row("open duplicate suggested", lambda: [tip(THEFT_LAST_NIGHT)], neighbour_case(True),
        outcomes=["opened"], new_cases=1, tipsters=[True], fingerprints=1,
        staged=[NEW, "duplicate_suggested@tips.updated.quang-phu"], check=_check_duplicate),
    Row("closed case is no duplicate", lambda: [tip(THEFT_LAST_NIGHT)], neighbour_case(False),
        outcomes=["opened"], new_cases=1, tipsters=[True], fingerprints=1, staged=[NEW],
        check=_check_not_duplicate),
    Row("candidate noted with its code: no load", lambda: [tip(THEFT_LAST_NIGHT)],
        neighbour_case_unloaded, outcomes=["opened"], new_cases=1, tipsters=[True],
        fingerprints=1, staged=[NEW, "duplicate_suggested@tips.updated.quang-phu"],
        check=_check_duplicate),
    Row("unknown candidate: plan again", lambda: [tip(THEFT_LAST_NIGHT)], neighbour_case_unknown,
        outcomes=[], records=0, check=_check_missing),
    Row("insert happened before a crash: finish", lambda: [tip(THEFT_LAST_NIGHT)],
        inserted_before_crash, outcomes=["opened"], tipsters=[True], fingerprints=1, staged=[NEW]),
    # --- a message joins an open case ---
    Row("second message joins", lambda: [tip(THEFT_LAST_NIGHT + ", con chó vàng")],
        with_open_case(THEFT_LAST_NIGHT), outcomes=["joined"], joins=1, tipsters=[False],
        staged=[ADDED]),
    Row("join after the window opens a case", lambda: [tip(THEFT_LAST_NIGHT)],
        with_open_case(THEFT_LAST_NIGHT, minutes_ago=11), outcomes=["opened"], new_cases=1,
        tipsters=[True], fingerprints=1, staged=[NEW]),
    Row("closed case is not joined", lambda: [tip(THEFT_LAST_NIGHT)],
        with_open_case(THEFT_LAST_NIGHT, status=CaseStatus.RESOLVED), outcomes=["opened"],
        new_cases=1, tipsters=[True], fingerprints=1, staged=[NEW]),
    Row("join retriages to urgent", lambda: [tip(KNIFE_NOW)], with_open_case(THEFT_LAST_NIGHT),
        outcomes=["joined"], joins=1, tipsters=[False], sla=1,
        staged=["message_added@tips.updated.quang-phu", "retriaged@tips.updated.quang-phu"],
        check=_check_retriage),
    Row("join places an unknown-ward case", lambda: [tip(PLACE_ONLY)],
        with_open_case(THEFT_NO_PLACE), outcomes=["joined"], joins=1, tipsters=[False],
        fingerprints=1, staged=[ADDED, "rerouted@tips.updated.unknown", NEW],
        check=_check_reroute),
    Row("opening redelivered before its ledger entry", lambda: [tip(THEFT_LAST_NIGHT)],
        redelivered_opening, outcomes=["opened"], staged=[NEW]),
    # --- the ledger ---
    Row("opened before: same reply key", lambda: [tip(THEFT_LAST_NIGHT)], ledger("opened"),
        outcomes=["redelivered"], records=0, check=_check_replayed_reply),
    Row("handled before: nothing", lambda: [tip(CHITCHAT)], ledger("ignored_other"),
        outcomes=["redelivered"], records=0),
    # --- a batch ---
    Row("same tipster twice in a batch", lambda: [tip(THEFT_LAST_NIGHT),
        tip(KNIFE_NOW, minutes=1)], outcomes=["opened", "joined"], new_cases=1, joins=1,
        tipsters=[True, False], fingerprints=1, sla=1,
        staged=[NEW, ADDED, "retriaged@tips.updated.quang-phu"], check=_check_same_case),
    Row("duplicate of a case opened earlier in the batch", _two_tipsters_same_incident,
        outcomes=["opened", "opened"], new_cases=2, tipsters=[True, True], fingerprints=2,
        staged=[NEW, NEW, "duplicate_suggested@tips.updated.quang-phu"],
        check=_check_batch_duplicate),
    Row("same event twice in a batch", _same_event_twice, outcomes=["opened", "redelivered"],
        new_cases=1, tipsters=[True], fingerprints=1, staged=[NEW], records=1),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_transition(core: IntakeCore, row: Row) -> None:
    events = row.events()
    plan = core.plan([arrival(e) for e in events], row.snapshot(core, events))
    assert [r.outcome for r in plan.results] == row.outcomes
    assert len(plan.new_cases) == row.new_cases
    assert len(plan.joins) == row.joins
    assert [note.first for note in plan.tipsters] == row.tipsters
    assert len(plan.fingerprints) == row.fingerprints
    assert len(plan.sla) == row.sla
    assert staged_kinds(plan) == row.staged
    expected_records = len(row.outcomes) if row.records is None else row.records
    assert len(plan.records) == expected_records
    if row.check is not None:
        row.check(plan, events)


def test_planning_twice_gives_the_same_plan(core: IntakeCore) -> None:
    """The orchestrator re-plans a batch after loading what it lacked: same input, same plan."""
    events = [tip(THEFT_LAST_NIGHT), tip(KNIFE_NOW, minutes=1), tip(TWO_WARDS, user_id=NEIGHBOUR)]
    arrivals = [arrival(e) for e in events]
    assert core.plan(arrivals, Snapshot()) == core.plan(arrivals, Snapshot())


def test_a_plan_needing_a_case_decides_nothing(core: IntakeCore) -> None:
    events = [tip(THEFT_LAST_NIGHT)]
    plan = core.plan([arrival(e) for e in events], neighbour_case_unknown(core, events))
    assert (plan.results, plan.new_cases, plan.staged, plan.records) == ([], [], [], [])


def test_case_message_keeps_photos_and_location() -> None:
    event = tip(
        " có trộm ",
        attachments=(
            Attachment(type=MessageType.IMAGE, url="https://example.invalid/a.jpg"),
            Attachment(type=MessageType.LOCATION, latitude=17.47, longitude=106.62),
        ),
    )
    msg = case_message(event)
    assert (msg.text, msg.photos, msg.latitude) == (
        "có trộm",
        ("https://example.invalid/a.jpg",),
        17.47,
    )


def test_the_planner_goes_on_where_it_stopped(core: IntakeCore) -> None:
    """Given the case it asked for, the planner decides the rest: the same plan as planning
    with that case known from the start, and no message decided twice."""
    events = [
        tip(CHITCHAT, user_id=NEIGHBOUR),
        tip(THEFT_LAST_NIGHT, minutes=1),  # needs the unknown candidate's case
        tip(KNIFE_NOW, minutes=2),  # joins the case the message before opens
    ]
    known = neighbour_case(True)(core, events)
    [mark] = known.fingerprints
    snapshot = Snapshot(fingerprints=(replace(mark, ref=None),))
    arrivals = [arrival(e) for e in events]
    planner = Planner(core, snapshot)
    assert planner.advance(arrivals) == {mark.case_id}
    assert planner.decided == 1  # the message before the one that waits stays decided
    planner.learn(known.cases)
    assert planner.advance(arrivals) == set()
    assert [r.outcome for r in planner.plan.results] == ["ignored_other", "opened", "joined"]
    assert planner.plan == core.plan(arrivals, snapshot.adding(known.cases))
