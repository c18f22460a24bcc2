"""Sign-in lockout by address behind a proxy (the staff console): identity believes
X-Forwarded-For only from the addresses in TRUSTED_PROXIES (none by default). In process, on
real NATS and MongoDB-wire servers, over loopback HTTP."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from shared.audit import client_address
from tests.console.test_proxy import serving
from tools.localstack.servers import free_port

Identity = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def identity(nats_url: str, mongodb_url: str, unique: str) -> Identity:
    @asynccontextmanager
    async def start(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
        config = IdentitySettings(
            nats_url=nats_url,
            mongodb_url=mongodb_url,
            mongodb_database=f"identity-{unique}",
            signin_address_max_failures=2,
            argon2_time_cost=1,
            argon2_memory_kib=8192,
            argon2_parallelism=1,
            **settings,  # type: ignore[arg-type]
        )
        async with (
            serving(create_app(config), free_port()) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield client

    return start


async def sign_in(client: httpx.AsyncClient, name: str, client_ip: str) -> int:
    body = {"username": name, "password": "not the password"}
    headers = {"x-forwarded-for": client_ip}
    return (await client.post("/auth/sign-in", json=body, headers=headers)).status_code


@pytest.mark.integration
async def test_behind_a_trusted_proxy_each_client_address_is_locked_on_its_own(
    identity: Identity,
) -> None:
    async with identity(trusted_proxies={"127.0.0.1"}) as client:
        # Other names each time: only the address's count (2) can lock.
        assert await sign_in(client, "khong-co-1", "198.51.100.7") == 401
        assert await sign_in(client, "khong-co-2", "198.51.100.7") == 429
        assert await sign_in(client, "khong-co-3", "198.51.100.7") == 429
        assert await sign_in(client, "khong-co-4", "198.51.100.8") == 401


@pytest.mark.integration
async def test_an_untrusted_peer_cannot_choose_its_address(identity: Identity) -> None:
    async with identity() as client:  # the default: no proxy is trusted
        assert await sign_in(client, "khong-co-1", "198.51.100.7") == 401
        assert await sign_in(client, "khong-co-2", "198.51.100.8") == 429
        assert await sign_in(client, "khong-co-3", "198.51.100.9") == 429


def test_only_the_hop_the_trusted_proxy_appended_counts() -> None:
    trusted = frozenset({"10.0.0.2"})
    assert client_address("10.0.0.2", ["1.2.3.4, 198.51.100.7"], trusted) == "198.51.100.7"
    assert client_address("10.0.0.2", [], trusted) == "10.0.0.2"
    assert client_address("10.0.0.3", ["198.51.100.7"], trusted) == "10.0.0.3"
    assert client_address(None, ["198.51.100.7"], trusted) is None
