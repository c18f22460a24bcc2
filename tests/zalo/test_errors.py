"""Every mapped Zalo error code surfaces as its typed exception, through the real client."""

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from shared.zalo.client import ZaloClient
from shared.zalo.errors import (
    MAPPED_CODES,
    AccessTokenInvalid,
    GroupUnavailable,
    InvalidPayload,
    NightTimeRestricted,
    NotFollower,
    OutsideInteractionWindow,
    RateLimited,
    UnexpectedZaloError,
    UserUnreachable,
    ZaloError,
    error_for,
)
from tests.fixtures.fake_zalo import FakeZalo

EXPECTED: dict[int, type[ZaloError]] = {
    -32: RateLimited,
    -216: AccessTokenInvalid,
    -220: AccessTokenInvalid,
    -213: NotFollower,
    -230: OutsideInteractionWindow,
    -232: OutsideInteractionWindow,
    -227: OutsideInteractionWindow,
    -244: UserUnreachable,
    -403: GroupUnavailable,
    -237: GroupUnavailable,
    -201: InvalidPayload,
    -210: InvalidPayload,
    -233: InvalidPayload,
    -234: NightTimeRestricted,
}


class TestErrorFor:
    def test_every_mapped_code_has_an_expectation(self) -> None:
        assert set(MAPPED_CODES) == set(EXPECTED)

    @pytest.mark.parametrize(("code", "kind"), sorted(EXPECTED.items()))
    def test_maps_code(self, code: int, kind: type[ZaloError]) -> None:
        error = error_for(code, "msg")
        assert type(error) is kind
        assert (error.code, error.message) == (code, "msg")

    def test_unknown_code_falls_back(self) -> None:
        assert type(error_for(-211, "out of quota")) is UnexpectedZaloError

    def test_only_rate_limit_is_retryable(self) -> None:
        assert [c for c in EXPECTED if error_for(c, "").retryable] == [-32]


@pytest.fixture
async def zalo(fake_zalo: FakeZalo, nats_client: NatsClient) -> AsyncIterator[ZaloClient]:
    settings = fake_zalo.settings(zalo_retry_attempts=1)
    async with ZaloClient(settings, nats=nats_client) as client:
        yield client


@pytest.mark.integration
@pytest.mark.parametrize(("code", "kind"), sorted(EXPECTED.items()))
async def test_code_surfaces_as_exception(
    zalo: ZaloClient, fake_zalo: FakeZalo, code: int, kind: type[ZaloError]
) -> None:
    # Two injections: an access-token error is refreshed once and retried once.
    fake_zalo.admin.inject_error(code, count=2, path_prefix="/v3.0/oa/message/cs")
    with pytest.raises(kind) as caught:
        await zalo.send_text("246845883529197920", "Xin chào")
    assert caught.value.code == code
