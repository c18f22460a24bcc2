from datetime import UTC, datetime, timedelta

import pytest

from services.broadcast.domain import Channel
from services.broadcast.groups import (
    Group,
    LifecycleChange,
    MembershipChange,
    content_hash,
    group_event_change,
    group_event_update,
    membership_change,
    parse_groups_csv,
    registry_changes,
)
from tests.broadcast.builders import ADMIN, EDITOR, OFFICER, REGISTRAR, group_row, groups_csv


class TestCsv:
    def test_good_file(self) -> None:
        rows = [group_row("g1"), group_row("g2", channel="manual", officer_id="u1", is_test="có")]
        groups, errors = parse_groups_csv(groups_csv(rows))
        assert errors == []
        assert [g.channel for g in groups] == [Channel.OA, Channel.MANUAL]
        assert groups[1].is_test

    def test_each_bad_row_is_reported(self) -> None:
        rows = [
            group_row("g1"),
            group_row("g2", ward="ha-noi"),
            group_row("g3", channel="manual"),
            group_row("g1"),
            group_row("g5", member_count="nhiều"),
        ]
        _, errors = parse_groups_csv(groups_csv(rows))
        assert [e.row for e in errors] == [3, 4, 5, 6]
        assert "ha-noi" in errors[0].errors[0]
        assert "officer_id" in errors[1].errors[0]
        assert "trùng" in errors[2].errors[0]
        assert "member_count" in errors[3].errors[0]

    def test_missing_columns(self) -> None:
        _, errors = parse_groups_csv("group_id,name\n1,a\n")
        assert "channel" in errors[0].errors[0]


class TestGroupEvents:
    def test_join_and_leave(self) -> None:
        assert membership_change("user_join_group") == 1
        assert membership_change("user_out_group") == -1
        assert membership_change("user_send_group_text") is None

    def test_disbanded_group_becomes_inactive(self) -> None:
        assert group_event_update("disperse_group", None) == (False, None)

    def test_created_group_takes_its_name(self) -> None:
        assert group_event_update("create_group", {"group_name": "Tổ 5"}) == (True, "Tổ 5")
        assert group_event_update("create_group", {"group_name": " \x07"}) == (True, None)

    def test_a_zalo_group_name_is_stored_as_one_clean_line(self) -> None:
        payload = {"group_name": "Tổ 5\n\x1b[2J\x07Phường Đồng Hải"}
        _, name = group_event_update("update_group_info", payload) or (True, None)
        assert name == "Tổ 5[2JPhường Đồng Hải"
        Group(group_id="g1", name=name)  # the registry reads it back

    def test_unrelated_event(self) -> None:
        assert group_event_update("user_send_group_text", None) is None

    AT = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("event_name", "group_id", "user_id", "change"),
        [
            ("user_join_group", "g1", "u1", MembershipChange("g1", "u1", 1, AT)),
            ("remove_member_group", "g1", "u1", MembershipChange("g1", "u1", -1, AT)),
            ("user_join_group", "g1", None, None),  # a membership event without its member
            ("user_join_group", None, "u1", None),
            ("create_group", None, None, None),
            ("user_send_group_text", "g1", "u1", None),
            (
                "disperse_group",
                "g1",
                "u1",
                LifecycleChange("g1", False, None, AT),
            ),
        ],
    )
    def test_what_a_group_event_changes(
        self,
        event_name: str,
        group_id: str | None,
        user_id: str | None,
        change: MembershipChange | LifecycleChange | None,
    ) -> None:
        assert group_event_change(event_name, group_id, user_id, None, self.AT) == change

    def test_a_created_group_is_upserted(self) -> None:
        change = group_event_change("create_group", "g1", None, {"name": "Tổ 5"}, self.AT)
        assert change == LifecycleChange("g1", True, "Tổ 5", self.AT)


@pytest.mark.integration
class TestImportApi:
    async def test_nothing_half_imported(self, broadcast) -> None:
        h = await broadcast(workers=False)
        bad = groups_csv([group_row("g1"), group_row("g2", ward="x")])
        r = await h.http.post("/groups/import", content=bad, headers=REGISTRAR)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["row", 3]
        listed = (await h.http.get("/groups", headers=EDITOR)).json()
        assert listed["total"] == 0
        good = groups_csv([group_row("g1"), group_row("g2")])
        r = await h.http.post("/groups/import", content=good, headers=REGISTRAR)
        assert r.json() == {"imported": 2}

    async def test_a_dry_run_reports_errors_and_moves_but_stores_nothing(self, broadcast) -> None:
        """The console's preview: the same answer as the import, nothing written."""
        h = await broadcast(workers=False)
        bad = groups_csv([group_row("g1"), group_row("g2", ward="x")])
        r = await h.http.post("/groups/import?dry_run=true", content=bad, headers=REGISTRAR)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["row", 3]
        good = groups_csv([group_row("g1"), group_row("g2")])
        r = await h.http.post("/groups/import?dry_run=true", content=good, headers=REGISTRAR)
        assert r.json() == {"dry_run": True, "groups": 2, "ward_moves": 0}
        assert (await h.http.get("/groups", headers=EDITOR)).json()["total"] == 0
        imported = await h.http.post("/groups/import", content=good, headers=REGISTRAR)
        assert imported.status_code == 200
        moved = groups_csv([group_row("g1", ward="bao-ninh")])
        r = await h.http.post("/groups/import?dry_run=true", content=moved, headers=REGISTRAR)
        assert r.status_code == 403  # as the import would refuse a registrar's move
        r = await h.http.post("/groups/import?dry_run=true", content=moved, headers=ADMIN)
        assert r.json() == {"dry_run": True, "groups": 1, "ward_moves": 1}
        listed = (await h.http.get("/groups", headers=EDITOR)).json()["items"]
        assert {g["group_id"]: g["ward"] for g in listed}["g1"] != "bao-ninh"

    async def test_officer_role_cannot_import(self, broadcast) -> None:
        h = await broadcast(workers=False)
        r = await h.http.post("/groups/import", content="x", headers=OFFICER)
        assert r.status_code == 403
        assert "vai trò" in r.json()["detail"]

    async def test_only_registrars_and_admins_write_the_registry(self, broadcast) -> None:
        """An editor writes notices, not the registry (its groups, wards and officers)."""
        h = await broadcast(workers=False)
        csv = groups_csv([group_row("g1")])
        refused = await h.http.post("/groups/import", content=csv, headers=EDITOR)
        assert refused.status_code == 403, refused.text
        put = group_row("g1") | {"active": True}
        assert (await h.http.put("/groups/g1", json=put, headers=EDITOR)).status_code == 403
        assert (await h.http.get("/groups", headers=EDITOR)).json()["total"] == 0
        imported = await h.http.post("/groups/import", content=csv, headers=REGISTRAR)
        assert imported.json() == {"imported": 1}
        assert (await h.http.put("/groups/g1", json=put, headers=REGISTRAR)).status_code == 200

    async def test_only_the_registry_keepers_list_officers_zalo_ids(self, broadcast) -> None:
        """Finding 10: the registry holds officers' Zalo ids; staff outside broadcast (here
        an officer) may not list it; its keepers and the editors who target notices may."""
        h = await broadcast(workers=False)
        csv = groups_csv([group_row("g1", officer_id="84912345678", officer_name="A")])
        assert (
            await h.http.post("/groups/import", content=csv, headers=REGISTRAR)
        ).status_code == 200
        assert (await h.http.get("/groups", headers=OFFICER)).status_code == 403
        listed = await h.http.get("/groups", headers=EDITOR)
        assert listed.json()["items"][0]["officer_id"] == "84912345678"


class TestRegistryChanges:
    """What broadcast announces of its registry for analytics (`RegistryGroupChanged`)."""

    AT = datetime(2026, 12, 1, tzinfo=UTC)

    def groups(self, at: datetime = AT, **changes: str) -> list:  # type: ignore[type-arg]
        rows = [group_row("g1", officer_id="84912345678"), group_row("g2", **changes)]
        groups, errors = parse_groups_csv(groups_csv(rows))
        assert errors == []
        return [(group, at) for group in groups]

    def test_every_group_at_first_then_only_the_changed_ones(self) -> None:
        first = registry_changes(self.groups(), {})
        assert [e.group_id for e in first] == ["g1", "g2"]
        announced = {e.group_id: content_hash(e) for e in first}
        later = self.AT + timedelta(minutes=1)
        assert registry_changes(self.groups(later), announced) == []
        (renamed,) = registry_changes(self.groups(later, name="Tổ 9"), announced)
        assert (renamed.group_id, renamed.name, renamed.changed_at) == ("g2", "Tổ 9", later)

    def test_a_change_back_gets_a_new_id_and_the_officer_stays_home(self) -> None:
        first = registry_changes(self.groups(), {})
        again = registry_changes(self.groups(self.AT + timedelta(hours=1)), {})
        assert {e.event_id for e in first}.isdisjoint(e.event_id for e in again)
        assert "84912345678" not in first[0].model_dump_json()
