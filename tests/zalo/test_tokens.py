"""The shared token pair: one refresh for many replicas, single-use refresh tokens honoured."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from nats.aio.client import Client as NatsClient

from shared.jetstream import connect
from shared.settings import ZaloSettings
from shared.zalo.client import ZaloClient
from shared.zalo.errors import TokenRefreshFailed, TokenUnavailable
from shared.zalo.models import TokenPair
from shared.zalo.tokens import KvTokenStore, MemoryTokenStore, TokenKeeper, TokenState
from tests.fixtures.fake_zalo import FakeZalo

USER = "246845883529197920"


@pytest.fixture
async def five_connections(nats_url: str) -> AsyncIterator[list[NatsClient]]:
    """Five separate NATS connections, as five replicas would have."""
    connections = [await connect(nats_url, name=f"replica-{i}") for i in range(5)]
    try:
        yield connections
    finally:
        for nc in connections:
            await nc.close()


async def run_replicas(settings: ZaloSettings, connections: list[NatsClient]) -> list[str]:
    started = asyncio.Barrier(len(connections))

    async def replica(nc: NatsClient) -> str:
        async with ZaloClient(settings, nats=nc) as zalo:
            await started.wait()  # all are up before any calls: they really race for the token
            return (await zalo.send_text(USER, "Xin chào")).message_id

    return await asyncio.gather(*(replica(nc) for nc in connections))


@pytest.mark.integration
class TestRefreshRace:
    async def test_expired_token_is_refreshed_once_for_five_clients(
        self, fake_zalo: FakeZalo, five_connections: list[NatsClient]
    ) -> None:
        pair = fake_zalo.admin.issue_tokens(expires_in=0)
        settings = fake_zalo.settings(
            zalo_access_token=pair["access_token"],
            zalo_refresh_token=pair["refresh_token"],
            zalo_access_token_ttl=0,
        )
        sent = await run_replicas(settings, five_connections)
        assert len(set(sent)) == 5
        assert fake_zalo.admin.refresh_calls() == 1
        assert len(fake_zalo.admin.messages("cs")) == 5

    async def test_token_rejected_by_zalo_is_refreshed_once_for_five_clients(
        self, fake_zalo: FakeZalo, five_connections: list[NatsClient]
    ) -> None:
        async with AsyncExitStack() as stack:
            settings = fake_zalo.settings()
            replicas = [
                await stack.enter_async_context(ZaloClient(settings, nats=nc))
                for nc in five_connections
            ]
            for zalo in replicas:
                await zalo.get_oa_info()  # each replica now holds the live token
            fake_zalo.admin.expire_access_tokens()  # the clients still believe it is fresh
            sent = await asyncio.gather(*(zalo.send_text(USER, "Xin chào") for zalo in replicas))
        assert len({message.message_id for message in sent}) == 5
        assert fake_zalo.admin.refresh_calls() == 1
        assert sum(c.get("error") == -220 for c in fake_zalo.admin.calls()) == 5

    async def test_stale_lease_of_a_dead_replica_is_taken_over(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        settings = fake_zalo.settings(zalo_access_token_ttl=0, zalo_refresh_lease=0.3)
        async with ZaloClient(settings, nats=nats_client) as zalo:
            kv = await nats_client.jetstream().key_value(settings.zalo_token_bucket)  # type: ignore[attr-defined]
            store = KvTokenStore(kv)
            pair = TokenPair(access_token="fake-initial-access-token",
                             refresh_token="fake-initial-refresh-token", expires_at=0)  # fmt: skip
            dead = TokenState(pair=pair, lease_owner="dead", lease_until=time.time() + 0.3)
            assert await store.swap(dead, 0) is not None
            await zalo.send_text(USER, "Xin chào")
        assert fake_zalo.admin.refresh_calls() == 1

    async def test_refresh_rotates_single_use_tokens(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        async with ZaloClient(fake_zalo.settings(), nats=nats_client) as zalo:
            first = await zalo.refresh_access_token()
            second = await zalo.refresh_access_token()
            assert first.refresh_token != second.refresh_token
            await zalo.send_text(USER, "Vẫn gửi được")
        # A replica holding the original (now used) refresh token in its own bucket fails.
        stale = fake_zalo.settings(zalo_token_bucket=f"other_{fake_zalo.suffix}")
        async with ZaloClient(stale, nats=nats_client) as zalo:
            with pytest.raises(TokenRefreshFailed):
                await zalo.refresh_access_token()
        assert fake_zalo.admin.refresh_calls() == 3

    async def test_authorization_code_flow_stores_the_pair(
        self, fake_zalo: FakeZalo, nats_client: NatsClient
    ) -> None:
        code = fake_zalo.admin.oauth_code()
        settings = fake_zalo.settings(zalo_access_token=None, zalo_refresh_token=None)
        async with ZaloClient(settings, nats=nats_client) as zalo:
            with pytest.raises(TokenUnavailable):
                await zalo.get_oa_info()
            await zalo.exchange_authorization_code(code, "verifier")
            assert (await zalo.get_oa_info()).num_follower == 3
            with pytest.raises(TokenRefreshFailed):
                await zalo.exchange_authorization_code(code, "verifier")


class TestKeeperInProcess:
    async def test_concurrent_callers_share_one_refresh(self) -> None:
        calls: list[str] = []

        async def refresher(refresh_token: str) -> TokenPair:
            calls.append(refresh_token)
            await asyncio.sleep(0)
            return TokenPair(access_token="new", refresh_token="r2", expires_at=time.time() + 100)

        seed = TokenPair(access_token="old", refresh_token="r1", expires_at=0)
        keeper = TokenKeeper(MemoryTokenStore(), refresher, margin=10, lease=5, seed=seed)
        tokens = await asyncio.gather(*(keeper.access_token() for _ in range(10)))
        assert tokens == ["new"] * 10
        assert calls == ["r1"]

    async def test_failed_refresh_releases_the_lease(self) -> None:
        attempts: list[str] = []

        async def refresher(refresh_token: str) -> TokenPair:
            attempts.append(refresh_token)
            if len(attempts) == 1:
                raise TokenRefreshFailed(-14020, "used")
            return TokenPair(access_token="new", refresh_token="r2", expires_at=time.time() + 100)

        store = MemoryTokenStore()
        seed = TokenPair(access_token="old", refresh_token="r1", expires_at=0)
        keeper = TokenKeeper(store, refresher, margin=10, lease=60, seed=seed)
        with pytest.raises(TokenRefreshFailed):
            await keeper.access_token()
        state, _ = await store.load()
        assert state is not None
        assert state.lease_owner is None
        assert await keeper.access_token() == "new"
