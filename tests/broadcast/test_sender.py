"""The sender under failures: dead letters, rate limits, server errors and restarts."""

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.broadcast.groups import (
    LifecycleChange,
    MembershipChange,
    group_event_change,
    parse_groups_csv,
)
from shared.subjects import BROADCAST_DEAD_LETTER
from tests.broadcast.builders import (
    EDITOR,
    add_groups,
    group_row,
    group_texts,
    groups_csv,
    notice_body,
    publish_zalo_event,
    wait_settled,
)
from tests.contracts.golden import check_golden
from tests.polling import eventually

pytestmark = pytest.mark.integration
GROUP_PATH = "/v3.0/oa/group/message"


class TestDeadLetter:
    async def test_dead_letter_after_the_attempt_bound(self, broadcast, nats_client) -> None:
        h = await broadcast(max_attempts=3)
        [group] = await add_groups(h, 1)
        dead: asyncio.Queue[dict] = asyncio.Queue()

        async def on_dead(msg) -> None:
            check_golden(BROADCAST_DEAD_LETTER, msg.data)
            await dead.put(json.loads(msg.data))

        sub = await nats_client.subscribe(BROADCAST_DEAD_LETTER, cb=on_dead)
        await nats_client.flush()  # subscribed at the server before the sender can publish
        h.fake.admin.inject_http_status(503, count=3, path_prefix=GROUP_PATH)
        created = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        try:
            letter = await asyncio.wait_for(dead.get(), 60)
        finally:
            await sub.unsubscribe()
        assert letter["type"] == "delivery.dead_lettered"
        assert letter["target_id"] == group
        assert letter["attempts"] == 3
        assert "HTTP 503" in letter["last_error"]
        assert await wait_settled(h, created["id"], 1) == {"failed": 1}
        assert len(h.fake.admin.calls(GROUP_PATH)) == 3
        assert group_texts(h) == []

    async def test_permanent_error_is_not_retried(self, broadcast) -> None:
        h = await broadcast(max_attempts=5)
        await add_groups(h, 1)
        h.fake.admin.inject_error(-403, count=1, path_prefix=GROUP_PATH)
        created = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        assert await wait_settled(h, created["id"], 1) == {"failed": 1}
        assert len(h.fake.admin.calls(GROUP_PATH)) == 1


class TestGroupEvents:
    async def test_registry_follows_group_events(self, broadcast) -> None:
        h = await broadcast(workers=False)
        js = h.service.js
        payload = {"group_name": "Tổ dân phố 5 Đồng Hải"}
        await publish_zalo_event(
            js, "group", "create_group", group_id="555", payload=payload, oa_id="1"
        )
        for user in ("1001", "1002", "1003"):
            await publish_zalo_event(js, "group", "user_join_group", group_id="555", user_id=user)

        def members(count: int):  # type: ignore[no-untyped-def]
            async def counted():  # type: ignore[no-untyped-def]
                group = await h.service.groups.get("555")
                return group if group and group.member_count == count else None

            return counted

        # A member leaves after joining (Zalo sends these seconds apart, not in one burst).
        await eventually(members(3))
        await publish_zalo_event(js, "group", "user_out_group", group_id="555", user_id="1002")
        group = await eventually(members(2))
        assert group.name == "Tổ dân phố 5 Đồng Hải"
        assert group.channel == "oa"
        await publish_zalo_event(js, "group", "disperse_group", group_id="555")

        async def inactive():
            found = await h.service.groups.get("555")
            return found is not None and not found.active

        await eventually(inactive)

    async def test_latest_membership_event_wins_whatever_the_order(self, broadcast) -> None:
        """Redelivery can hand a join over after a later leave: the member stays out."""
        h = await broadcast(workers=False)
        groups = h.service.groups
        joined = datetime.now(UTC) - timedelta(minutes=5)
        left = joined + timedelta(minutes=1)
        assert await groups.change_membership(MembershipChange("556", "2001", +1, joined)) == 1
        assert await groups.change_membership(MembershipChange("556", "2002", -1, left)) == 1
        assert await groups.change_membership(MembershipChange("556", "2002", +1, joined)) == 1
        assert await groups.change_membership(MembershipChange("556", "2003", +1, joined)) == 2
        # In order, and a rejoin after the leave, both still count.
        assert await groups.change_membership(MembershipChange("556", "2003", -1, left)) == 1
        assert (
            await groups.change_membership(
                MembershipChange("556", "2002", +1, left + timedelta(seconds=1))
            )
            == 2
        )
        group = await groups.get("556")
        assert group is not None
        assert group.member_count == 2

    async def test_imported_member_count_moves_with_joins_and_leaves(self, broadcast) -> None:
        """An imported group's count is the import's, plus joins, minus leaves; a member the
        import counted who leaves lowers it, one who joined since and leaves takes it back."""
        h = await broadcast(workers=False)
        groups = h.service.groups
        (group,), _ = parse_groups_csv(groups_csv([group_row("557")]))  # 50 members
        await groups.upsert_many([group], datetime.now(UTC))
        at = datetime.now(UTC) - timedelta(minutes=5)
        assert await groups.change_membership(MembershipChange("557", "new", +1, at)) == 51
        assert await groups.change_membership(MembershipChange("557", "old", -1, at)) == 50
        assert (
            await groups.change_membership(MembershipChange("557", "new", -1, at + timedelta(1)))
            == 49
        )
        assert await groups.change_membership(MembershipChange("557", "new", +1, at)) == 49  # older

    async def test_latest_lifecycle_event_wins_whatever_the_order(self, broadcast) -> None:
        """Redelivery can hand `create_group` over after the `disperse_group` that followed
        it: the group stays disbanded (and out of the roster) until a later event."""
        h = await broadcast(workers=False)
        groups = h.service.groups
        created = datetime.now(UTC) - timedelta(minutes=5)
        disbanded = created + timedelta(minutes=1)
        create = group_event_change("create_group", "557", None, {"group_name": "Tổ 7"}, created)
        disperse = group_event_change("disperse_group", "557", None, None, disbanded)
        assert isinstance(create, LifecycleChange)
        assert isinstance(disperse, LifecycleChange)
        await groups.apply(create)
        await groups.apply(disperse)
        await groups.apply(create)  # the late redelivery
        group = await groups.get("557")
        assert group is not None
        assert not group.active
        assert group.name == "Tổ 7"
        assert "557" not in {e.group_id for e in await groups.roster()}
        later = disbanded + timedelta(seconds=1)
        renamed = group_event_change(
            "update_group_info", "557", None, {"group_name": "Tổ 7 mới"}, later
        )
        assert isinstance(renamed, LifecycleChange)
        await groups.apply(renamed)
        group = await groups.get("557")
        assert group is not None
        assert group.active
        assert group.name == "Tổ 7 mới"
        assert "557" in {e.group_id for e in await groups.roster()}


async def _chaos(admin, stop: asyncio.Event) -> None:
    """Keep about 10 % of group sends failing with a server error, plus rate-limit bursts."""
    injected = 0
    while not stop.is_set():
        calls = admin.stats()["calls_by_path"].get(GROUP_PATH, 0)
        due = calls // 10 + 1 - injected
        if due > 0:
            status = 500 if injected % 2 else 503  # 500: maybe delivered, 503: surely not
            admin.inject_http_status(status, count=due, path_prefix=GROUP_PATH)
            admin.inject_error(-32, count=1, path_prefix=GROUP_PATH)
            injected += due
        await asyncio.sleep(0.05)


class TestFailuresAndRestarts:
    async def test_exactly_once_with_errors_and_worker_restarts(self, broadcast) -> None:
        h = await broadcast(workers=False, max_attempts=50)
        groups = await add_groups(h, 4) + await add_groups(h, 2, ward="bac-ly")
        workers = [await broadcast(max_attempts=50, sender_batch=5) for _ in range(2)]
        stop = asyncio.Event()
        chaos = asyncio.create_task(_chaos(h.fake.admin, stop))
        notices = []
        try:
            for i in range(20):
                body = notice_body(
                    title=f"Cảnh báo số {i}", targets={"wards": ["dong-hai", "bac-ly"]}
                )
                notices.append((await h.http.post("/notices", json=body, headers=EDITOR)).json())
                if i % 7 == 6:  # restart one worker replica while work is in flight
                    old = workers.pop(0)
                    await old.stop()
                    workers.append(await broadcast(max_attempts=50, sender_batch=5))
            for notice in notices:
                assert await wait_settled(h, notice["id"], 6, timeout=90) == {"sent": 6}
        finally:
            stop.set()
            await chaos
        per_pair = Counter(
            (group, notice["verification_code"])
            for group, text in group_texts(h)
            for notice in notices
            if notice["verification_code"] in text
        )
        assert len(per_pair) == 20 * len(groups)
        assert set(per_pair.values()) == {1}
        errors = [
            c for c in h.fake.admin.calls(GROUP_PATH) if c.get("http_status") or c.get("error")
        ]
        assert len(errors) >= 20


@pytest.fixture
def nats_sub_cleanup():
    with contextlib.suppress(Exception):
        yield
