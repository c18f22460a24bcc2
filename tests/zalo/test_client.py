"""The client's operations against the fake Zalo, sharing state through the real NATS."""

import unicodedata
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from shared.zalo.client import ZaloClient
from shared.zalo.errors import (
    GroupUnavailable,
    InvalidPayload,
    NotFollower,
    OutsideInteractionWindow,
)
from shared.zalo.models import BroadcastTarget
from tests.fixtures.fake_zalo import FakeZalo

pytestmark = pytest.mark.integration
USER = "246845883529197920"
GROUP = "500000000000000000"


@pytest.fixture
async def zalo(fake_zalo: FakeZalo, nats_client: NatsClient) -> AsyncIterator[ZaloClient]:
    async with ZaloClient(fake_zalo.settings(), nats=nats_client) as client:
        yield client


class TestMessages:
    async def test_send_text_is_recorded_nfc_normalized(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        decomposed = unicodedata.normalize("NFD", "Cảm ơn bạn đã báo tin")
        sent = await zalo.send_text(USER, decomposed, quote_message_id="abc123")
        [record] = fake_zalo.admin.messages("cs")
        assert record["message_id"] == sent.message_id
        assert record["text"] == unicodedata.normalize("NFC", decomposed)
        assert record["quote_message_id"] == "abc123"
        assert sent.quota is not None
        assert sent.quota.quota_type == "reply"

    async def test_text_over_2000_characters_is_refused_before_sending(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        with pytest.raises(InvalidPayload):
            await zalo.send_text(USER, "a" * 2001)
        assert fake_zalo.admin.calls("/v3.0/oa/message/cs") == []

    async def test_2000_nfc_characters_pass_even_if_longer_decomposed(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        text = "ệ" * 2000
        assert len(unicodedata.normalize("NFD", text)) > 2000
        await zalo.send_text(USER, unicodedata.normalize("NFD", text))
        assert fake_zalo.admin.messages("cs")[0]["text"] == text

    async def test_send_image_by_url(self, zalo: ZaloClient, fake_zalo: FakeZalo) -> None:
        await zalo.send_image(USER, image_url="https://example.org/a.png")
        assert fake_zalo.admin.messages("cs")[0]["image"] == {"url": "https://example.org/a.png"}

    async def test_send_image_needs_exactly_one_source(self, zalo: ZaloClient) -> None:
        with pytest.raises(InvalidPayload):
            await zalo.send_image(USER)

    async def test_non_follower_raises_not_follower(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        stranger = fake_zalo.admin.add_user(is_follower=False)
        with pytest.raises(NotFollower):
            await zalo.send_text(stranger, "Xin chào")

    async def test_user_silent_for_8_days_is_outside_the_window(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        quiet = fake_zalo.admin.add_user(last_interaction_ago=8 * 86400)
        with pytest.raises(OutsideInteractionWindow) as caught:
            await zalo.send_text(quiet, "Xin chào")
        assert caught.value.code == -230


class TestGroups:
    async def test_group_text_and_listing(self, zalo: ZaloClient, fake_zalo: FakeZalo) -> None:
        sent = await zalo.send_group_text(GROUP, "Thông báo: họp tổ an ninh lúc 19 giờ.")
        assert sent.group_id == GROUP
        assert fake_zalo.admin.messages("group")[0]["group_id"] == GROUP
        page = await zalo.list_groups(0, 2)
        assert (page.total, len(page.groups)) == (3, 2)
        members = await zalo.list_group_members(GROUP)
        assert USER in [member.user_id for member in members.members]

    async def test_group_image_by_attachment_id_must_exist(self, zalo: ZaloClient) -> None:
        with pytest.raises(InvalidPayload):
            await zalo.send_group_image(GROUP, attachment_id="never-uploaded")

    @pytest.mark.parametrize(("fields", "code"), [({"oa_is_member": False}, -403),
                                                  ({"expired": True}, -237)])  # fmt: skip
    async def test_unavailable_group(
        self, zalo: ZaloClient, fake_zalo: FakeZalo, fields: dict[str, bool], code: int
    ) -> None:
        group = fake_zalo.admin.add_group(**fields)
        with pytest.raises(GroupUnavailable) as caught:
            await zalo.send_group_text(group, "Xin chào")
        assert caught.value.code == code


class TestArticles:
    async def test_create_then_broadcast_to_a_target(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        created = await zalo.create_article(
            "Cảnh báo lừa đảo", "Nội dung", author="CA TP", cover_url="https://e.org/c.jpg"
        )
        article_id = await zalo.article_id_for(created.token)
        target = BroadcastTarget(ages=[2, 3], locations=[1], cities=[44])
        sent = await zalo.broadcast_article(article_id, target)
        [record] = fake_zalo.admin.messages("broadcast")
        assert record["message_id"] == sent.message_id
        assert record["article_id"] == article_id
        assert record["target"] == {"ages": [2, 3], "locations": [1], "cities": [44]}

    async def test_list_articles_reads_configured_count_fields(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.add_article(title="Bài mới", views=42, shares=7)
        async with ZaloClient(fake_zalo.settings(), nats=nats_client) as zalo:
            stats = {a.title: a for a in await zalo.list_articles(0, 10)}
        assert (stats["Bài mới"].views, stats["Bài mới"].shares) == (42, 7)
        unconfirmed = fake_zalo.settings(zalo_article_view_fields=["views_count"])
        async with ZaloClient(unconfirmed, nats=nats_client) as zalo:
            stats = {a.title: a for a in await zalo.list_articles(0, 10)}
        assert stats["Bài mới"].views is None


class TestReads:
    async def test_oa_info_followers_and_profile(
        self, zalo: ZaloClient, fake_zalo: FakeZalo
    ) -> None:
        fake_zalo.admin.add_user(is_follower=False)
        info = await zalo.get_oa_info()
        assert info.num_follower == 3
        page = await zalo.list_followers(0, 50)
        assert page.total == 3
        assert USER in page.user_ids
        profile = await zalo.get_user_profile(USER)
        assert profile.display_name == "Nguyễn Văn An"
        assert profile.user_is_follower


async def test_works_without_nats(fake_zalo: FakeZalo) -> None:
    async with ZaloClient(fake_zalo.settings(zalo_rate_limits={"message": 100.0})) as zalo:
        await zalo.send_text(USER, "Không cần NATS")
    assert len(fake_zalo.admin.messages("cs")) == 1


@pytest.mark.integration
async def test_uploaded_image_can_be_sent_to_a_group(zalo: ZaloClient, fake_zalo: FakeZalo) -> None:
    attachment_id = await zalo.upload_image(b"\x89PNG" + b"0" * 64, "a.png", "image/png")
    await zalo.send_group_image(GROUP, attachment_id=attachment_id)
    assert fake_zalo.admin.messages("group")[0]["image"] == {"attachment_id": attachment_id}
