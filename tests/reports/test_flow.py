"""End to end against real NATS, the MongoDB-wire server and the fake Zalo server."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from services.reports.sla import escalate_overdue
from shared.events.tips import TipEscalated, TipTriaged, TipUpdated
from shared.logging import JsonFormatter
from shared.places import DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE
from shared.subjects import (
    reports_desk_durable,
    tips_escalated_subject,
    tips_updated_subject,
)
from tests.contracts.golden import check_golden
from tests.polling import eventually
from tests.reports.builders import (
    CITIZEN,
    NEIGHBOUR,
    auth,
    location,
    message,
    photo,
    stream_payloads,
)
from tests.reports.conftest import Harness

pytestmark = pytest.mark.integration
Start = Callable[..., Awaitable[Harness]]


async def desk(harness: Harness, ward: str, unique: str):  # type: ignore[no-untyped-def]
    """A dispatcher desk: a durable consumer on the ward's triaged tips."""
    return await harness.nc.jetstream().pull_subscribe(
        f"tips.triaged.{ward}.>",
        durable=f"{reports_desk_durable(ward)}-{unique}",
        stream=harness.settings.tips_stream,
    )


class TestTipReachesDispatcher:
    async def test_ward_subscriber_gets_category_priority_ward_and_reasons(
        self, reports: Start, unique: str
    ) -> None:
        harness = await reports()
        sub = await desk(harness, "quang-phu", unique)
        await harness.publish(message(text="Cướp có dao đang ở cây xăng xã Quang Phú, cứu với"))
        [msg] = await sub.fetch(1, timeout=30)
        tip = TipTriaged.model_validate_json(msg.data)
        assert msg.subject == "tips.triaged.quang-phu.urgent"
        assert (tip.ward, tip.category, tip.priority) == ("quang-phu", "robbery", "urgent")
        rules = {reason.rule for reason in tip.reasons}
        # The model's evidence for the category, the safety rule that made it urgent, the place.
        assert {"model.category", "safety.weapon_now", "ward.unit"} <= rules
        assert tip.tipster.startswith("p-")
        await msg.ack()
        await sub.unsubscribe()

    async def test_citizen_gets_reference_code_and_113_advice(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Đang có đánh nhau, có người bị chém chảy máu ở chợ xã Quang Phú")
        await harness.publish(event)
        await harness.processed(event.event_id)
        [case] = await harness.cases()
        sent = await eventually(lambda: _cs_messages(harness))
        assert sent[0]["user_id"] == CITIZEN
        assert case["ref"] in sent[0]["text"]
        assert "113" in sent[0]["text"]
        assert "Công an xã Quang Phú" in sent[0]["text"]


class TestGrouping:
    async def test_text_photo_location_within_window_make_one_case(self, reports: Start) -> None:
        harness = await reports()
        events = [
            message(text="Có 2 người lạ mặt đi xe không biển lảng vảng trong xóm, xã Lộc Ninh"),
            photo(),
            location(),
        ]
        for event in events:
            await harness.publish(event)
            await harness.processed(event.event_id)
        [case] = await harness.cases()
        assert case["message_ids"] == [e.event_id for e in events]
        assert case["ward"] == "loc-ninh"
        assert case["category"] == "suspicious"
        assert sum(len(m["photos"]) for m in case["messages"]) == 1
        assert any(m["latitude"] for m in case["messages"])
        # A reply goes out after the ledger entry `processed` waits for (and before the ack):
        # only once all three are acked would a second or third acknowledgement have shown.
        await _drained(harness, len(events))
        assert len(_cs_messages_now(harness)) == 1  # one acknowledgement, not three

    async def test_after_the_window_a_new_case_opens(self, reports: Start) -> None:
        harness = await reports(group_window_seconds=60)
        first = message(text="Trộm xe máy ở xã Lộc Ninh")
        later = message(
            text="Lại có trộm chó ở xã Lộc Ninh", at=first.received_at + timedelta(minutes=5)
        )
        for event in (first, later):
            await harness.publish(event)
            await harness.processed(event.event_id)
        assert len(await harness.cases()) == 2


class TestDuplicates:
    async def test_two_residents_same_incident_get_a_suggestion_and_can_merge(
        self, reports: Start
    ) -> None:
        harness = await reports()
        first = message(CITIZEN, "Cháy nhà ở xã Quang Phú, lửa đang bốc cao, khói đen")
        second = message(NEIGHBOUR, "chay nha o xa quang phu, khoi den mu mit, lua boc cao")
        for event in (first, second):
            await harness.publish(event)
            await harness.processed(event.event_id)
        cases = {c["message_ids"][0]: c for c in await harness.cases()}
        original, copy = cases[first.event_id], cases[second.event_id]
        assert copy["duplicate_of"] == original["_id"]

        async def suggested() -> bool:
            # Published beside the ledger entry `processed` waits for, so maybe just after it.
            bodies = await stream_payloads(harness.nc.jetstream(), harness.settings.tips_stream)
            updates = [TipUpdated.model_validate_json(b) for b in bodies if b'"tip.updated"' in b]
            return any(
                u.change == "duplicate_suggested" and u.case_id == copy["_id"] for u in updates
            )

        await eventually(suggested)
        merged = await harness.http.post(
            f"/cases/{copy['_id']}/transitions",
            json={"to": "duplicate", "merged_into": original["_id"]},
            headers=auth("t-qp"),
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["merged_into"] == original["_id"]


class TestWorkflow:
    async def test_illegal_transition_is_refused(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có sòng bạc ở xã Quang Phú, đông người lắm")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        url = f"/cases/{case_id}/transitions"
        refused = await harness.http.post(url, json={"to": "resolved"}, headers=auth("t-qp"))
        assert refused.status_code == 409
        assert "Không thể chuyển" in refused.json()["detail"]
        no_outcome = await harness.http.post(url, json={"to": "verifying"}, headers=auth("t-qp"))
        assert no_outcome.status_code == 200
        missing = await harness.http.post(url, json={"to": "resolved"}, headers=auth("t-qp"))
        assert missing.status_code == 422
        done = await harness.http.post(
            url, json={"to": "resolved", "outcome": "verified_handled"}, headers=auth("t-qp")
        )
        assert done.json()["status"] == "resolved"
        reopened = await harness.http.post(url, json={"to": "verifying"}, headers=auth("t-qp"))
        assert reopened.status_code == 409

    async def test_roster_assigns_and_sla_escalates_unacknowledged_urgent(
        self, reports: Start
    ) -> None:
        roster = {"quang-phu": [{"officer": "o-7", "start": "00:00", "end": "00:00"}]}
        harness = await reports(roster=json.dumps(roster), urgent_ack_seconds=60)
        event = message(text="Cháy lớn ở chợ xã Quang Phú, có người mắc kẹt")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        case = await harness.reports.store.get(case_id)
        assert case is not None
        assert (case.assignee, case.status, case.priority) == ("o-7", "assigned", "urgent")
        sub = await harness.nc.subscribe(tips_escalated_subject("quang-phu"))
        # The service publishes on its own connection: the server must hold our subscription
        # before it does, or the escalation passes by unseen (a PING/PONG round trip).
        await harness.nc.flush()
        later = case.created_at + timedelta(seconds=61)
        store, publisher = harness.reports.store, harness.reports.publisher
        assert await escalate_overdue(store, publisher, later, timedelta(seconds=60)) == 1
        escalated = await sub.next_msg(timeout=30)
        check_golden(escalated.subject, escalated.data)
        escalation = TipEscalated.model_validate_json(escalated.data)
        assert (escalation.case_id, escalation.assignee) == (case_id, "o-7")
        assert await escalate_overdue(store, publisher, later, timedelta(seconds=60)) == 0
        await sub.unsubscribe()

    async def test_rerouting_to_another_ward(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        sub = await harness.nc.subscribe(tips_updated_subject("quang-phu"))
        await harness.nc.flush()  # subscribed at the server before the service publishes
        moved = await harness.http.patch(
            f"/cases/{case_id}", json={"ward": "bao-ninh"}, headers=auth("t-admin")
        )
        assert moved.json()["ward"] == "bao-ninh"
        notices = [TipUpdated.model_validate_json((await sub.next_msg(timeout=30)).data)]
        assert any(n.change == "rerouted" and n.ward == "bao-ninh" for n in notices)
        gone = await harness.http.get(f"/cases/{case_id}", headers=auth("t-qp"))
        assert gone.status_code == 403
        await sub.unsubscribe()


class TestAuthorization:
    async def test_dispatcher_of_another_ward_gets_403(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có người bán ma túy ở xã Quang Phú")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        own = await harness.http.get(f"/cases/{case_id}", headers=auth("t-qp"))
        assert own.status_code == 200
        other = await harness.http.get(f"/cases/{case_id}", headers=auth("t-bl"))
        assert other.status_code == 403
        assert other.json()["detail"] == "Bạn không được giao phường/xã này."
        listed = await harness.http.get("/cases?ward=quang-phu", headers=auth("t-bl"))
        assert listed.status_code == 403
        mine = await harness.http.get("/cases", headers=auth("t-bl"))
        assert mine.json()["total"] == 0
        act = await harness.http.post(
            f"/cases/{case_id}/notes", json={"text": "x"}, headers=auth("t-bl")
        )
        assert act.status_code == 403
        analyst = await harness.http.post(
            f"/cases/{case_id}/notes", json={"text": "x"}, headers=auth("t-analyst")
        )
        assert analyst.status_code == 403
        assert (await harness.http.get("/cases")).status_code == 401


class TestTipsterPrivacy:
    async def test_zalo_id_appears_nowhere_in_stream_api_or_logs(
        self, reports: Start, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        harness = await reports()
        events = [
            message(text="Tố giác: có người bán ma túy ở xã Quang Phú, sđt 0912 345 678"),
            photo(),
            location(),
        ]
        for event in events:
            await harness.publish(event)
            await harness.processed(event.event_id)
        case_id = (await harness.cases())[0]["_id"]
        await harness.http.post(
            f"/cases/{case_id}/reply",
            json={"text": "Cảm ơn, chúng tôi đang xác minh."},
            headers=auth("t-qp"),
        )
        bodies = await stream_payloads(harness.nc.jetstream(), harness.settings.tips_stream)
        api_texts = [
            (await harness.http.get("/cases", headers=auth("t-qp"))).text,
            (await harness.http.get(f"/cases/{case_id}", headers=auth("t-qp"))).text,
        ]
        formatter = JsonFormatter()
        log_lines = [formatter.format(record) for record in caplog.records]
        assert bodies
        assert api_texts
        assert log_lines
        for text in [b.decode() for b in bodies] + api_texts + log_lines:
            assert CITIZEN not in text
        assert not any("0912" in b.decode() for b in bodies)
        staff_reply = _cs_messages_now(harness)[-1]
        assert staff_reply["user_id"] == CITIZEN  # the reply still reaches the citizen

    async def test_only_admin_reveals_and_every_reveal_is_audited(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        case = (await harness.http.get(f"/cases/{case_id}", headers=auth("t-qp"))).json()
        url = f"/tipsters/{case['tipster']}/reveal"
        body = {"reason": "Yêu cầu của cơ quan điều tra", "case_id": case_id}
        assert (await harness.http.post(url, json=body, headers=auth("t-qp"))).status_code == 403
        revealed = await harness.http.post(url, json=body, headers=auth("t-admin"))
        assert revealed.json()["zalo_user_id"] == CITIZEN
        [entry] = (await harness.http.get("/audit", headers=auth("t-admin"))).json()
        assert (entry["actor"], entry["pseudonym"]) == ("a-1", case["tipster"])
        assert (entry["case_id"], entry["case_ref"]) == (case_id, case["ref"])
        # And in the staff audit log: who, when, from where (shared.audit).
        logged = await harness.reports.store.db["audit_log"].find_one(
            {"action": "tipster_revealed"}
        )
        assert logged is not None
        assert (logged["actor_id"], logged["target"]) == ("a-1", case["tipster"])
        assert logged["address"] == "127.0.0.1"
        assert logged["details"] == {"case_id": case_id}
        stored = await harness.reports.store.tipsters.find_one({"_id": case["tipster"]})
        assert stored is not None
        assert CITIZEN not in json.dumps(stored, default=str)

    async def test_reveal_needs_a_case_this_tipster_sent(self, reports: Start) -> None:
        """Finding 9: no case id, a case that does not exist, or another tipster's case is
        refused, and nothing is revealed or audited."""
        harness = await reports()
        mine, theirs = (
            message(text="Có trộm ở xã Quang Phú"),
            message(text="Có trộm ở xã Quang Phú", user_id="7000000000000000999"),
        )
        for event in (mine, theirs):
            await harness.publish(event)
        my_case = (await harness.processed(mine.event_id))["case_id"]
        their_case = (await harness.processed(theirs.event_id))["case_id"]
        case = (await harness.http.get(f"/cases/{my_case}", headers=auth("t-admin"))).json()
        url = f"/tipsters/{case['tipster']}/reveal"
        reason = "Yêu cầu của cơ quan điều tra"
        for body, status in (
            ({"reason": reason}, 422),
            ({"reason": reason, "case_id": "no-such-case"}, 404),
            ({"reason": reason, "case_id": their_case}, 422),
        ):
            refused = await harness.http.post(url, json=body, headers=auth("t-admin"))
            assert refused.status_code == status, refused.text
            assert "zalo_user_id" not in refused.text
        assert (await harness.http.get("/audit", headers=auth("t-admin"))).json() == []


class TestIdempotency:
    async def test_redelivered_message_does_not_create_a_second_case(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(event)
        await harness.processed(event.event_id)
        # The same event again under another message id: JetStream delivers it a second time.
        await harness.publish(event, msg_id=f"{event.event_id}-again")
        js = harness.nc.jetstream()
        await _drained(harness, 2)
        assert len(await harness.cases()) == 1
        assert len(_cs_messages_now(harness)) == 1
        triaged = [
            b
            for b in await stream_payloads(js, harness.settings.tips_stream)
            if b'"tip.triaged"' in b
        ]
        assert len(triaged) == 1


class TestPlaces:
    async def test_old_unit_name_resolves_to_its_current_ward(
        self, reports: Start, unique: str
    ) -> None:
        harness = await reports(
            places_crosswalk_file=DEMO_CROSSWALK_FILE, places_extra_file=DEMO_PLACES_FILE
        )
        sub = await desk(harness, "dong-hoi", unique)
        await harness.publish(message(text="Nhà tôi ở phường Bắc Lý bị mất trộm xe máy tối qua"))
        [msg] = await sub.fetch(1, timeout=30)
        tip = TipTriaged.model_validate_json(msg.data)
        assert tip.ward == "dong-hoi"
        assert any(r.rule == "ward.former_unit" and r.term == "Bắc Lý" for r in tip.reasons)
        await sub.unsubscribe()

    async def test_group_message_takes_the_groups_ward(self, reports: Start) -> None:
        harness = await reports(group_wards=json.dumps({"7210493857261940582": "duc-ninh"}))
        event = message(
            text="ae cảnh giác, có xe máy không biển lảng vảng đầu thôn",
            group_id="7210493857261940582",
        )
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        case = await harness.reports.store.get(case_id)
        assert case is not None
        assert (case.ward, case.channel) == ("duc-ninh", "group")
        assert _cs_messages_now(harness) == []  # no private reply to a group member


class TestQuestions:
    async def test_known_question_is_answered_without_a_case(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Cho em hỏi làm căn cước gắn chip cần mang giấy tờ gì ạ?")
        await harness.publish(event)
        ledger = await harness.processed(event.event_id)
        assert ledger["outcome"] == "answered"
        assert await harness.cases() == []
        [answer] = await eventually(lambda: _cs_messages(harness))
        assert "căn cước" in answer["text"]

    async def test_unanswered_question_becomes_a_question_case(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Cho hỏi muốn tổ chức hội chợ ở sân vận động thì xin phép ai?")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        case = await harness.reports.store.get(case_id)
        assert case is not None
        assert case.kind == "question"


class TestVerificationCodes:
    """Code checks belong to broadcast: the warning a resident pastes must not become a tip."""

    WARNING = (
        "Cảnh báo: đối tượng giả danh công an gọi điện yêu cầu chuyển tiền vào tài khoản để "
        "xác minh, tuyệt đối không chuyển tiền."
    )

    @pytest.mark.parametrize(
        ("text", "group_id"),
        [
            (f"Có phải công an gửi không? «{WARNING}» Mã xác thực: CA-7KQ2MX", None),
            (f"co phai cong an gui khong, ma ca 7kq2mx. {WARNING}", None),
            (f"{WARNING}\n\nCông an TP Đồng Hới. Mã xác thực: CA-7KQ2MX", "7210493857261940582"),
        ],
        ids=["pasted-with-code", "without-diacritics", "forwarded-into-group"],
    )
    async def test_a_message_with_a_code_opens_no_case(
        self, reports: Start, text: str, group_id: str | None
    ) -> None:
        harness = await reports()
        checked = message(text=text, group_id=group_id)
        await harness.publish(checked)
        assert (await harness.processed(checked.event_id))["outcome"] == "ignored_verification"
        assert await harness.cases() == []

    async def test_the_same_warning_without_a_code_goes_to_triage(self, reports: Start) -> None:
        # Without a code the check stays out of the way and triage decides. The bare forwarded
        # warning has no local fact, so it is chat (docs/triage-labelling.md §4: "forwarded
        # national news or generic warnings with no local fact" are `other`); with a local
        # incident it is a fraud tip.
        harness = await reports()
        bare = message(text=f"Có phải công an gửi không? «{self.WARNING}»")
        local = message(
            NEIGHBOUR,
            f"Hôm qua mạ tôi ở Lộc Đại bị gọi y rứa, có phải công an gửi không? «{self.WARNING}»",
        )
        for event in (bare, local):
            await harness.publish(event)
        assert (await harness.processed(bare.event_id))["outcome"] == "ignored_other"
        assert (await harness.processed(local.event_id))["outcome"] == "opened"
        [case] = await harness.cases()
        assert case["category"] == "fraud"


async def _cs_messages(harness: Harness) -> list[dict[str, object]]:
    return await asyncio.to_thread(harness.fake.admin.messages, "cs")


def _cs_messages_now(harness: Harness) -> list[dict[str, object]]:
    return harness.fake.admin.messages("cs")


async def _drained(harness: Harness, published: int) -> None:
    """Wait until intake has handled and acked all `published` events of the stream (replies
    included: they are sent before the ack)."""
    js = harness.nc.jetstream()

    async def drained() -> bool:
        info = await js.consumer_info(
            harness.settings.zalo_events_stream, harness.settings.intake_durable
        )
        return info.delivered.stream_seq == published and info.num_ack_pending == 0

    await eventually(drained)


class TestPoisonMessages:
    async def test_invalid_event_is_rejected_without_logging_its_content(
        self, reports: Start, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        harness = await reports()
        bad = {"event_id": "bad-1", "kind": "user_message", "user_id": CITIZEN, "text": "x"}
        await harness.nc.jetstream().publish(
            "zalo.event.user_message", json.dumps(bad).encode(), headers={"Nats-Msg-Id": "bad-1"}
        )
        good = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(good)
        await harness.processed(good.event_id)
        assert any("invalid event rejected" in r.getMessage() for r in caplog.records)
        formatter = JsonFormatter()
        assert not any(CITIZEN in formatter.format(r) for r in caplog.records)
        assert len(await harness.cases()) == 1


class TestLocationRouting:
    async def test_shared_location_routes_a_case_without_a_place_name(self, reports: Start) -> None:
        harness = await reports(places_extra_file=DEMO_PLACES_FILE)
        text = message(text="Có người lạ mặt rình rập trước cửa nhà hàng xóm")
        pin = location()
        pin = pin.model_copy(
            update={
                "attachments": (
                    pin.attachments[0].model_copy(
                        update={"latitude": 17.515, "longitude": 106.595}
                    ),
                )
            }
        )
        for event in (text, pin):
            await harness.publish(event)
            await harness.processed(event.event_id)
        [case] = await harness.cases()
        assert (case["ward"], case["ward_source"]) == ("quang-phu", "location")


class TestStaffReply:
    async def test_reply_reaches_the_tipster_and_a_zalo_failure_is_a_clear_502(
        self, reports: Start
    ) -> None:
        harness = await reports()
        event = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        # The acknowledgement goes out after the ledger entry `processed` waits for: wait for
        # it, or it may land after the staff reply below, or take the injected Zalo errors.
        [acknowledgement] = await eventually(lambda: _cs_messages(harness), timeout=30)
        assert acknowledgement["user_id"] == CITIZEN
        url = f"/cases/{case_id}/reply"
        sent = await harness.http.post(
            url, json={"text": "Đã nhận, cảm ơn bạn."}, headers=auth("t-qp")
        )
        assert sent.status_code == 200
        last = _cs_messages_now(harness)[-1]
        assert last["user_id"] == CITIZEN
        assert "Đã nhận, cảm ơn bạn." in str(last["text"])
        harness.fake.admin.inject_error(-230, count=5)
        failed = await harness.http.post(url, json={"text": "Lần hai"}, headers=auth("t-qp"))
        assert failed.status_code == 502
        assert "Không gửi được tin nhắn qua Zalo" in failed.json()["detail"]


class TestRecovery:
    async def test_an_opening_interrupted_after_the_insert_is_finished_on_redelivery(
        self, reports: Start
    ) -> None:
        harness = await reports()
        store, intake = harness.reports.store, harness.reports.intake
        event = message(text="Có trộm ở xã Quang Phú")
        first = await intake.handle(event)
        # As if the process died before the ledger entry and the outbox were written:
        await store.intake.delete_one({"_id": event.event_id})
        await store.outbox.delete_many({})
        again = await intake.handle(event)
        assert (again.outcome, again.case_id) == ("opened", first.case_id)
        assert again.reply_key == first.reply_key  # the reply is still sent at most once
        assert [item.event_id for item in await store.staged(first.case_id)] == [
            f"tt-{first.case_id}-quang-phu"
        ]
        assert len(await harness.cases()) == 1

    async def test_retriage_on_a_later_message_keeps_the_ward_reason(self, reports: Start) -> None:
        harness = await reports()
        events = [
            message(text="Có trộm ở xã Quang Phú"),
            message(text="nó đang cầm dao dọa chủ nhà"),
        ]
        for event in events:
            await harness.publish(event)
            await harness.processed(event.event_id)
        [case] = await harness.cases()
        assert case["priority"] == "urgent"
        rules = {reason["rule"] for reason in case["reasons"]}
        assert "ward.unit" in rules
        assert "safety.weapon_now" in rules  # the second message made it urgent


class TestRetention:
    async def test_retention_forgets_silent_tipsters(self, reports: Start) -> None:
        harness = await reports()
        event = message(text="Có trộm ở xã Quang Phú")
        await harness.publish(event)
        case_id = (await harness.processed(event.event_id))["case_id"]
        store = harness.reports.store
        assert await store.forget_tipsters(event.received_at - timedelta(days=1)) == 0
        assert await store.forget_tipsters(event.received_at + timedelta(seconds=1)) == 1
        case = (await harness.http.get(f"/cases/{case_id}", headers=auth("t-qp"))).json()
        reveal = await harness.http.post(
            f"/tipsters/{case['tipster']}/reveal",
            json={"reason": "Yêu cầu điều tra", "case_id": case_id},
            headers=auth("t-admin"),
        )
        assert reveal.status_code == 404
