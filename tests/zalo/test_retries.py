"""Retries happen only where safe, with jittered backoff bounded in attempts and total time."""

import time

import pytest
from nats.aio.client import Client as NatsClient

from shared.zalo.client import ZaloClient
from shared.zalo.errors import (
    AccessTokenInvalid,
    NotFollower,
    OutsideInteractionWindow,
    RateLimited,
    ZaloHttpError,
)
from tests.fixtures.fake_zalo import FakeZalo

pytestmark = pytest.mark.integration
USER = "246845883529197920"
CS = "/v3.0/oa/message/cs"
GETOA = "/v2.0/oa/getoa"


def client(fake_zalo: FakeZalo, nats: NatsClient, **overrides: object) -> ZaloClient:
    return ZaloClient(fake_zalo.settings(**overrides), nats=nats)


class TestRateLimitedCalls:
    async def test_recovers_after_transient_rate_limit(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_error(-32, count=2)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=4) as zalo:
            await zalo.send_text(USER, "Xin chào")
        assert [c.get("error") for c in fake_zalo.admin.calls(CS)] == [-32, -32, None]
        assert len(fake_zalo.admin.messages("cs")) == 1

    async def test_stops_at_the_attempt_bound(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_error(-32, count=50)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=4) as zalo:
            with pytest.raises(RateLimited):
                await zalo.send_text(USER, "Xin chào")
        assert len(fake_zalo.admin.calls(CS)) == 4

    async def test_stops_at_the_total_time_bound(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        # Retry-After 5 s capped to max_delay 2 s: the first wait ends well inside the 4 s bound,
        # the second would end past it (whatever the calls cost: up to 1 s each on a loaded
        # host), so the client calls twice and gives up without the second wait.
        fake_zalo.admin.inject_http_status(429, count=50, retry_after=5)
        settings = {"zalo_retry_attempts": 20, "zalo_retry_max_delay": 2.0}
        async with client(fake_zalo, nats_client, zalo_retry_total=4.0, **settings) as zalo:
            started = time.monotonic()
            with pytest.raises(ZaloHttpError) as caught:
                await zalo.get_oa_info()
            elapsed = time.monotonic() - started
        assert caught.value.code == 429
        assert len(fake_zalo.admin.calls(GETOA)) == 2
        assert elapsed < 4.0  # the bound itself: a second wait would have taken it past 4 s


class TestPermanentErrors:
    @pytest.mark.parametrize(("code", "kind"), [(-213, NotFollower),
                                                (-230, OutsideInteractionWindow)])  # fmt: skip
    async def test_per_user_error_is_never_retried(
        self, fake_zalo: FakeZalo, nats_client: NatsClient, code: int, kind: type[Exception]
    ) -> None:
        fake_zalo.admin.inject_error(code, count=5)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=5) as zalo:
            with pytest.raises(kind):
                await zalo.send_text(USER, "Xin chào")
        assert len(fake_zalo.admin.calls(CS)) == 1


class TestHttpFailures:
    async def test_read_is_retried_after_server_errors(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_http_status(500, count=2)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=3) as zalo:
            info = await zalo.get_oa_info()
        assert info.num_follower == 3
        assert len(fake_zalo.admin.calls(GETOA)) == 3

    async def test_send_is_not_repeated_when_it_may_have_been_delivered(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_http_status(500, count=3)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=3) as zalo:
            with pytest.raises(ZaloHttpError) as caught:
                await zalo.send_text(USER, "Xin chào")
        assert (caught.value.code, caught.value.retryable, caught.value.maybe_delivered) == (
            500, True, True)  # fmt: skip
        assert len(fake_zalo.admin.calls(CS)) == 1

    async def test_send_is_retried_on_503_which_was_not_processed(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_http_status(503, count=1)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=3) as zalo:
            await zalo.send_text(USER, "Xin chào")
        assert len(fake_zalo.admin.calls(CS)) == 2

    async def test_server_down_gives_up_at_the_bound(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.set_down()
        async with client(fake_zalo, nats_client, zalo_retry_attempts=3) as zalo:
            with pytest.raises(ZaloHttpError) as caught:
                await zalo.get_oa_info()
        fake_zalo.admin.set_down(False)
        assert caught.value.code == 503
        assert len(fake_zalo.admin.calls(GETOA)) == 3

    async def test_timeout_on_send_is_not_retried(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.set_latency(0.5)
        settings = {"zalo_retry_attempts": 3, "zalo_http_timeout": 0.1}
        async with client(fake_zalo, nats_client, **settings) as zalo:
            with pytest.raises(ZaloHttpError) as caught:
                await zalo.send_text(USER, "Xin chào")
        fake_zalo.admin.set_latency(0)
        assert (caught.value.code, caught.value.maybe_delivered) == (0, True)
        assert len(fake_zalo.admin.calls(CS)) == 1

    async def test_connection_refused_is_retried_then_surfaces(self, fake_zalo: FakeZalo) -> None:
        from tools.localstack.servers import free_port

        nowhere = f"http://127.0.0.1:{free_port()}"
        settings = fake_zalo.settings(zalo_api_base=nowhere, zalo_retry_attempts=2)
        async with ZaloClient(settings) as zalo:
            with pytest.raises(ZaloHttpError) as caught:
                await zalo.send_text(USER, "Xin chào")
        assert (caught.value.code, caught.value.maybe_delivered) == (0, False)


class TestTokenErrors:
    async def test_invalid_token_refreshes_once_and_retries_once(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_error(-216, count=1)
        async with client(fake_zalo, nats_client) as zalo:
            await zalo.send_text(USER, "Xin chào")
        assert fake_zalo.admin.refresh_calls() == 1
        assert len(fake_zalo.admin.calls(CS)) == 2

    async def test_second_token_error_surfaces(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        fake_zalo.admin.inject_error(-220, count=5)
        async with client(fake_zalo, nats_client, zalo_retry_attempts=5) as zalo:
            with pytest.raises(AccessTokenInvalid):
                await zalo.send_text(USER, "Xin chào")
        assert fake_zalo.admin.refresh_calls() == 1
        assert len(fake_zalo.admin.calls(CS)) == 2
