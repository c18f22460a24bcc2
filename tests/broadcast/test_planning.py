"""Planning: the registry's roster snapshot follows every change, and a notice's deliveries are
stored in pages that re-runs and concurrent planners never plan twice or lose."""

import asyncio
import json
from datetime import UTC, datetime

import pytest

from services.broadcast import store
from services.broadcast.domain import Notice, NoticeDraft, NoticeStatus, Targets
from services.broadcast.groups import (
    Group,
    MembershipChange,
    RosterEntry,
    roster_entry,
    select_targets,
)
from services.broadcast.planner import PAGE, group_delivery
from shared.subjects import BROADCAST_DELIVER, BROADCAST_WORK_STREAM
from shared.verification import new_verification_code
from tests.broadcast.builders import (
    ADMIN,
    EDITOR,
    REGISTRAR,
    add_groups,
    group_row,
    group_texts,
    notice_body,
    publish_zalo_event,
    wait_settled,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration


def entry(group_id: str, ward: str | None = "dong-hai", is_test: bool = False) -> RosterEntry:
    return RosterEntry(group_id, f"Tổ {group_id}", ward, "oa", None, None, is_test)


ROSTER = [
    entry("1", "dong-hai"),
    entry("2", "bac-ly"),
    entry("3", "bac-ly", is_test=True),
    entry("4", None),
]


class TestSelectTargets:
    def ids(self, targets: Targets, test_mode: bool = False) -> list[str]:
        return [e.group_id for e in select_targets(ROSTER, targets, test_mode)]

    def test_all_groups(self) -> None:
        assert self.ids(Targets(all_groups=True)) == ["1", "2", "3", "4"]

    def test_wards_and_named_groups(self) -> None:
        assert self.ids(Targets(wards=["bac-ly"])) == ["2", "3"]
        assert self.ids(Targets(wards=["dong-hai"], groups=["4"])) == ["1", "4"]

    def test_test_mode_keeps_only_test_groups(self) -> None:
        assert self.ids(Targets(wards=["bac-ly", "dong-hai"]), test_mode=True) == ["3"]

    def test_followers_only_has_no_groups(self) -> None:
        assert self.ids(Targets(followers=True)) == []


async def registry_truth(h) -> list[RosterEntry]:  # type: ignore[no-untyped-def]
    """What a full read of the registry says the roster must be."""
    groups = h.service.groups.groups
    docs = [d async for d in groups.find({"active": True})]
    return sorted(roster_entry(Group.model_validate({**d, "group_id": d["_id"]})) for d in docs)


class TestRoster:
    async def test_roster_follows_every_registry_change(self, broadcast) -> None:
        h = await broadcast(workers=False)
        groups = h.service.groups
        ids = await add_groups(h, 3, ward="bac-ly")
        # The import built the snapshot: planning reads it, not the registry.
        version = (await groups.registry.find_one({"_id": "version"}))["version"]
        assert await groups.rosters.find_one({"_id": version}) is not None
        assert [e.group_id for e in await groups.roster()] == ids

        js = h.service.js
        await publish_zalo_event(js, "group", "create_group", group_id="880", payload={})
        await publish_zalo_event(js, "group", "user_join_group", group_id="881", user_id="9")
        await publish_zalo_event(js, "group", "disperse_group", group_id=ids[0])

        async def caught_up() -> bool:
            found = {e.group_id for e in await groups.roster()}
            return {"880", "881"} <= found and ids[0] not in found

        await eventually(caught_up)
        assert await groups.roster() == await registry_truth(h)

        moved = group_row(ids[1], ward="dong-hai")
        response = await h.http.put(
            f"/groups/{ids[1]}", json=moved, headers=ADMIN
        )  # a move: admins only
        assert response.status_code == 200, response.text
        roster = {e.group_id: e for e in await groups.roster()}
        assert roster[ids[1]].ward == "dong-hai"
        assert await groups.roster() == await registry_truth(h)

    async def test_membership_moves_the_version_only_for_a_new_group_or_a_redo(
        self, broadcast
    ) -> None:
        h = await broadcast(workers=False)
        groups = h.service.groups

        async def version() -> str:
            return str((await groups.registry.find_one({"_id": "version"}))["version"])

        at = datetime.now(UTC)
        await groups.change_membership(MembershipChange("882", "1", +1, at))  # creates the group
        created = await version()
        assert "882" in {e.group_id for e in await groups.roster()}
        await groups.change_membership(MembershipChange("882", "2", +1, at))  # a member count only
        assert await version() == created
        # A redelivery: its first attempt may have created the group and died before the
        # version moved on, so it moves the version on again.
        await groups.change_membership(MembershipChange("882", "2", +1, at), True)
        assert await version() != created

    async def test_a_roster_of_many_pages_is_read_whole(self, broadcast, monkeypatch) -> None:
        monkeypatch.setattr(store, "ROSTER_PAGE", 3)
        h = await broadcast(workers=False)
        groups = h.service.groups
        await add_groups(h, 10, ward="nam-ly")
        version = (await groups.registry.find_one({"_id": "version"}))["version"]
        head = await groups.rosters.find_one({"_id": version})
        assert head is not None
        assert head["pages"] == 4
        assert await groups.roster() == await registry_truth(h)
        assert len(await groups.roster()) == 10

        await add_groups(h, 1, ward="nam-ly", prefix="8")  # a new version replaces the old
        assert await groups.rosters.count_documents({"version": version}) == 0
        assert len(await groups.roster()) == 11

    async def test_a_missing_roster_is_built_from_the_registry(self, broadcast) -> None:
        h = await broadcast(workers=False)
        groups = h.service.groups
        await add_groups(h, 4, ward="dong-son")
        await groups.rosters.delete_many({})
        await groups.registry.delete_many({})  # as a registry written before versions existed
        assert await groups.roster() == await registry_truth(h)
        assert len(await groups.roster()) == 4

    async def test_notices_reach_groups_added_and_not_groups_deactivated(self, broadcast) -> None:
        h = await broadcast()
        ids = await add_groups(h, 3, ward="phu-hai")
        body = notice_body(targets={"wards": ["phu-hai"]})
        first = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        await wait_settled(h, first["id"], 3)

        added = "7990000001"
        h.fake.admin.seed(groups=[{"group_id": added, "name": "Tổ mới"}])
        for row in (group_row(added, ward="phu-hai"), group_row(ids[0], ward="phu-hai")):
            if row["group_id"] == ids[0]:
                row["active"] = False
            response = await h.http.put(f"/groups/{row['group_id']}", json=row, headers=REGISTRAR)
            assert response.status_code == 200, response.text
        second = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        await wait_settled(h, second["id"], 3)
        code = second["verification_code"]
        reached = sorted(g for g, text in group_texts(h) if code in text)
        assert reached == sorted([ids[1], ids[2], added])


async def ready_notice(h, ward: str) -> Notice:  # type: ignore[no-untyped-def]
    """A notice stored as ready to plan, without the plan command (the test plans it)."""
    draft = NoticeDraft.model_validate(notice_body(targets={"wards": [ward]}))
    now = datetime.now(UTC)
    notice = Notice(
        **draft.model_dump(),
        id=f"n{now.timestamp():.6f}".replace(".", ""),
        status=NoticeStatus.READY,
        verification_code=new_verification_code(h.service.settings.verification_prefix),
        created_by="tests",
        created_at=now,
        release_at=now,
    )
    await h.service.notices.insert(notice)
    return notice


async def queued(h) -> int:  # type: ignore[no-untyped-def]
    """Delivery messages on the work queue (no worker takes them in these tests)."""
    info = await h.service.js.stream_info(
        BROADCAST_WORK_STREAM.name, subjects_filter=BROADCAST_DELIVER
    )
    return int((info.state.subjects or {}).get(BROADCAST_DELIVER, 0))


async def planned_targets(h, notice_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = await h.service.deliveries.planned(notice_id)
    return [d.target for page in pages for d in page]


class TestPlanPages:
    async def test_a_rerun_plans_nothing_twice(self, broadcast) -> None:
        h = await broadcast(workers=False)
        ids = await add_groups(h, PAGE + 20, ward="bao-ninh")
        notice = await ready_notice(h, "bao-ninh")
        assert await h.service.planner.plan(notice.id) == len(ids)
        assert await h.service.planner.plan(notice.id) == len(ids)  # e.g. after a crash
        targets = await planned_targets(h, notice.id)
        assert sorted(targets) == sorted(ids)
        assert len(await h.service.deliveries.planned(notice.id)) == 2
        assert await queued(h) == len(ids)  # republished messages are deduplicated

    async def test_concurrent_planners_plan_each_target_once(self, broadcast) -> None:
        h = await broadcast(workers=False)
        ids = await add_groups(h, 2 * PAGE + 10, ward="loc-ninh")
        notice = await ready_notice(h, "loc-ninh")
        await asyncio.gather(*(h.service.planner.plan(notice.id) for _ in range(3)))
        targets = await planned_targets(h, notice.id)
        assert sorted(targets) == sorted(ids)
        assert await queued(h) == len(ids)
        counts, _ = await h.service.deliveries.progress(notice.id)
        assert counts == {"pending": len(ids)}

    async def test_a_page_another_planner_stored_first_is_kept(self, broadcast) -> None:
        """Another planner, which read an older registry (with a group since deactivated),
        stored page 1 while this one planned page 0: its page stands (its messages may be
        out already) and the targets it lacks go to the next page."""
        h = await broadcast(workers=False)
        ids = await add_groups(h, PAGE + 6, ward="duc-ninh")
        notice = await ready_notice(h, "duc-ninh")
        gone = entry("7999999999", "duc-ninh")
        earlier = [group_delivery(notice, e) for e in [gone, entry(ids[-1], "duc-ninh")]]
        assert await h.service.deliveries.plan_page(notice.id, 1, earlier) is None
        await h.service.planner.plan(notice.id)
        targets = await planned_targets(h, notice.id)
        assert sorted(targets) == sorted([gone.group_id, *ids])
        assert len(targets) == len(set(targets))
        assert len(await h.service.deliveries.planned(notice.id)) == 3
        assert await queued(h) == len(ids) + 1

    async def test_a_rerun_keeps_the_pages_it_finds(self, broadcast) -> None:
        h = await broadcast(workers=False)
        ids = await add_groups(h, 4, ward="dong-phu")
        notice = await ready_notice(h, "dong-phu")
        crashed = [group_delivery(notice, entry(ids[0], "dong-phu"))]
        assert await h.service.deliveries.plan_page(notice.id, 0, crashed) is None
        assert await h.service.planner.plan(notice.id) == 4
        pages = await h.service.deliveries.planned(notice.id)
        assert [[d.target for d in page] for page in pages] == [ids[:1], ids[1:]]
        assert await queued(h) == 4

    async def test_pages_hold_the_deliveries_static_fields(self, broadcast) -> None:
        h = await broadcast(workers=False)
        await add_groups(h, 2, ward="hai-thanh", channel="manual", officer_id="4242")
        notice = await ready_notice(h, "hai-thanh")
        await h.service.planner.plan(notice.id)
        stored = await h.service.deliveries.plans.find_one({"_id": f"{notice.id}#0"})
        page = json.loads(stored["deliveries"])
        assert {d["channel"] for d in page} == {"manual"}
        assert {d["officer_id"] for d in page} == {"4242"}
        assert {d["code"] for d in page} == {notice.verification_code}
