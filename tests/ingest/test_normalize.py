"""Every documented event kind normalizes into the canonical model (no I/O)."""

from datetime import UTC, datetime

import pytest

from services.ingest.normalize import InvalidEvent, classify, event_id_for, normalize
from shared.events.zalo import MessageType, ZaloEventKind, ZaloEventReceived
from tests.ingest.builders import fixture_body, fixture_names
from tools.zalo_sim.events import EVENT_NAMES, EventFactory

NOW = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
USER = "246845883529197922"
OA = "388613280878808645"
GROUP = "7210493857261940582"

EXPECTED_KINDS = {
    "anonymous_send_text": ZaloEventKind.USER_MESSAGE,
    "follow": ZaloEventKind.FOLLOW,
    "oa_send_text": ZaloEventKind.OA_MESSAGE,
    "unfollow": ZaloEventKind.UNFOLLOW,
    "unknown_future_event": ZaloEventKind.UNKNOWN,
    "user_click_chatnow": ZaloEventKind.CHAT_OPENED,
    "user_join_group": ZaloEventKind.GROUP,
    "user_reacted_message": ZaloEventKind.REACTION,
    "user_received_message": ZaloEventKind.RECEIPT,
    "user_seen_message": ZaloEventKind.RECEIPT,
    "user_send_audio": ZaloEventKind.USER_MESSAGE,
    "user_send_business_card": ZaloEventKind.USER_MESSAGE,
    "user_send_file": ZaloEventKind.USER_MESSAGE,
    "user_send_gif": ZaloEventKind.USER_MESSAGE,
    "user_send_group_image": ZaloEventKind.GROUP_MESSAGE,
    "user_send_group_text": ZaloEventKind.GROUP_MESSAGE,
    "user_send_image": ZaloEventKind.USER_MESSAGE,
    "user_send_link": ZaloEventKind.USER_MESSAGE,
    "user_send_location": ZaloEventKind.USER_MESSAGE,
    "user_send_sticker": ZaloEventKind.USER_MESSAGE,
    "user_send_text": ZaloEventKind.USER_MESSAGE,
    "user_send_video": ZaloEventKind.USER_MESSAGE,
    "user_submit_info": ZaloEventKind.USER_INFO,
}


def test_every_fixture_is_covered() -> None:
    assert set(fixture_names()) == set(EXPECTED_KINDS)


@pytest.mark.parametrize("name", sorted(EXPECTED_KINDS))
def test_fixture_normalizes_to_its_kind(name: str) -> None:
    event = normalize(fixture_body(name), NOW)
    assert event.kind is EXPECTED_KINDS[name]
    assert event.app_id == "360846524940903967"
    assert event.occurred_at.tzinfo is not None
    assert len(event.event_id) == 32
    # The model survives the wire: what subscribers decode equals what ingest published.
    assert ZaloEventReceived.model_validate_json(event.model_dump_json()) == event


class TestMessages:
    def test_text_from_a_citizen(self) -> None:
        event = normalize(fixture_body("user_send_text", timestamp="1732851001000"), NOW)
        assert event.user_id == USER
        assert event.oa_id == OA
        assert event.message_type is MessageType.TEXT
        assert event.message_id == "9f2c1b7a0e4d4c1a8b31"
        assert event.text is not None
        assert event.text.startswith("Có 2 đối tượng lạ mặt")
        assert event.occurred_at == datetime(2024, 11, 29, 3, 30, 1, tzinfo=UTC)
        assert event.received_at == NOW

    def test_location_coordinates_become_numbers(self) -> None:
        event = normalize(fixture_body("user_send_location"), NOW)
        (pin,) = event.attachments
        assert (pin.type, pin.latitude, pin.longitude) == ("location", 17.4689, 106.6223)
        assert event.text is None

    def test_file_attachment(self) -> None:
        (file,) = normalize(fixture_body("user_send_file"), NOW).attachments
        assert (file.file_name, file.file_size, file.file_type) == (
            "don-trinh-bao.pdf",
            48213,
            "pdf",
        )

    def test_image_keeps_url_and_thumbnail(self) -> None:
        event = normalize(fixture_body("user_send_image"), NOW)
        (image,) = event.attachments
        assert image.url
        assert image.url.endswith("large.jpg")
        assert image.thumbnail
        assert image.thumbnail.endswith("thumb.jpg")
        assert event.text == "ảnh biển số xe"

    def test_sticker_id(self) -> None:
        (sticker,) = normalize(fixture_body("user_send_sticker"), NOW).attachments
        assert sticker.sticker_id == "7d4f2c"

    def test_group_message_names_the_group(self) -> None:
        event = normalize(fixture_body("user_send_group_text"), NOW)
        assert (event.group_id, event.user_id, event.oa_id) == (GROUP, USER, None)
        assert event.message_type is MessageType.TEXT

    def test_oa_echo_is_about_the_recipient(self) -> None:
        event = normalize(fixture_body("oa_send_text"), NOW)
        assert (event.user_id, event.oa_id, event.sender_admin_id) == (USER, OA, "1029384756")

    def test_anonymous_user(self) -> None:
        event = normalize(fixture_body("anonymous_send_text"), NOW)
        assert event.is_anonymous
        assert event.conversation_id == "conv-5521"


class TestOtherKinds:
    def test_follow(self) -> None:
        event = normalize(fixture_body("follow"), NOW)
        assert (event.user_id, event.oa_id, event.source) == (USER, OA, "oa_profile")

    def test_seen_receipt_lists_every_message(self) -> None:
        event = normalize(fixture_body("user_seen_message"), NOW)
        assert event.message_ids == ("8b9c0d1e2f3a4b5c6d7e", "9c0d1e2f3a4b5c6d7e8f")
        assert event.user_id == USER

    def test_reaction(self) -> None:
        event = normalize(fixture_body("user_reacted_message"), NOW)
        assert (event.reaction, event.user_id) == ("/-heart", USER)

    def test_submitted_info_is_flattened(self) -> None:
        info = normalize(fixture_body("user_submit_info"), NOW).submitted_info
        assert info is not None
        assert (info.phone, info.ward, info.address) == ("84912345678", "Quang Phú", "thôn Cửa Phú")

    def test_group_lifecycle_event_keeps_its_payload(self) -> None:
        body = fixture_body("user_join_group", group_name="Tổ dân phố 3 Bắc Lý")
        event = normalize(body, NOW)
        assert (event.kind, event.group_id, event.user_id) == (ZaloEventKind.GROUP, GROUP, USER)
        assert event.payload == body

    def test_messages_do_not_repeat_their_body(self) -> None:
        assert normalize(fixture_body("user_send_text"), NOW).payload is None

    def test_unknown_event_keeps_its_payload(self) -> None:
        body = fixture_body("unknown_future_event")
        event = normalize(body, NOW)
        assert event.kind is ZaloEventKind.UNKNOWN
        assert event.payload == body

    @pytest.mark.parametrize("name", EVENT_NAMES)
    def test_simulated_events_normalize(self, name: str) -> None:
        body = EventFactory("360846524940903967", seed=1).make(name)
        event = normalize(body, NOW)
        assert event.kind is not ZaloEventKind.UNKNOWN
        assert classify(name)[0] is event.kind


class TestEventIds:
    def test_same_body_same_id(self) -> None:
        assert event_id_for(fixture_body("user_send_text")) == event_id_for(
            fixture_body("user_send_text")
        )

    def test_receipt_and_message_with_the_same_msg_id_differ(self) -> None:
        echo, received = fixture_body("oa_send_text"), fixture_body("user_received_message")
        assert echo["message"]["msg_id"] == received["message"]["msg_id"]
        assert event_id_for(echo) != event_id_for(received)

    def test_events_without_msg_id_hash_their_identifying_fields(self) -> None:
        follow = fixture_body("follow", timestamp="1732851015000")
        later = fixture_body("follow", timestamp="1732851016000")
        assert event_id_for(follow) != event_id_for(later)

    def test_id_does_not_contain_the_user_id(self) -> None:
        assert USER not in event_id_for(fixture_body("follow"))


class TestInvalidShapes:
    @pytest.mark.parametrize(
        ("name", "change", "reason"),
        [
            ("user_send_text", {"sender": "246845883529197922"}, "sender"),
            ("user_send_text", {"sender": {"id": 246845883529197922}}, "sender.id"),
            ("user_send_text", {"message": {"text": "không có msg_id"}}, "msg_id"),
            ("follow", {"follower": None}, "follower"),
            ("user_seen_message", {"message": {}}, "msg_ids"),
            ("user_join_group", {"group_id": None}, "group_id"),
        ],
    )
    def test_is_refused_with_a_reason(
        self, name: str, change: dict[str, object], reason: str
    ) -> None:
        with pytest.raises(InvalidEvent, match=reason):
            normalize(fixture_body(name, **change), NOW)

    def test_bad_coordinates(self) -> None:
        body = fixture_body("user_send_location")
        body["message"]["attachments"][0]["payload"]["coordinates"]["latitude"] = "north"
        with pytest.raises(InvalidEvent, match="latitude"):
            normalize(body, NOW)

    def test_reason_never_quotes_the_content(self) -> None:
        body = fixture_body("user_send_text", sender={"id": 12345678901234})
        with pytest.raises(InvalidEvent) as caught:
            normalize(body, NOW)
        assert "12345678901234" not in str(caught.value)
