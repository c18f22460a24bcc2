"""The one verification every service uses (`shared.identity.verifier`), on the real NATS and
MongoDB-wire servers, in process with a clock the test moves: idle and absolute expiry, the
cache and its revocation event, CSRF, what a token and a session without a second factor may
do; and the sign-in throttle per name and per address."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from nats.aio.client import Client as NatsClient

from services.identity.settings import IdentitySettings
from services.identity.throttle import Limits, Throttle
from shared.auth import CurrentStaff, Role, StaffUser, require_roles
from shared.events.envelope import event_bytes
from shared.events.identity import StaffAccessRevoked
from shared.identity.store import IdentityStore, digest
from shared.identity.verifier import StaffVerifier, csrf_token, staff_verifier
from shared.mongo import connect_mongo
from shared.subjects import IDENTITY_REVOKED
from shared.web import harden
from tests.polling import eventually

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(mongodb_url: str, unique: str) -> AsyncIterator[IdentityStore]:
    mongo: Any = connect_mongo(mongodb_url)
    store = IdentityStore(mongo[f"identity_{unique}"])
    await store.ensure_indexes()
    yield store
    await mongo.drop_database(f"identity_{unique}")
    await mongo.close()


def app_for(verifier: StaffVerifier) -> httpx.AsyncClient:
    app = FastAPI()
    harden(app)
    app.state.staff = verifier

    @app.get("/who")
    async def who(user: CurrentStaff) -> dict[str, Any]:
        return {"id": user.id, "roles": sorted(user.roles), "withheld": sorted(user.withheld)}

    @app.post("/act")
    async def act(user: CurrentStaff) -> dict[str, str]:
        return {"id": user.id}

    @app.post("/approve")
    async def approve(
        user: Annotated[StaffUser, Depends(require_roles(Role.APPROVER))],
    ) -> dict[str, str]:
        return {"id": user.id}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def person(store: IdentityStore, roles: list[str], **extra: Any) -> str:
    person_id = f"p-{uuid.uuid4().hex[:12]}"
    await store.insert_account(
        {
            "_id": person_id,
            "username": person_id,
            "name": "Cán bộ",
            "roles": roles,
            "wards": ["quang-phu"],
            "active": True,
            **extra,
        }
    )
    return person_id


async def session(
    store: IdentityStore, person_id: str, *, second_factor: bool = True, idle: float = 60
) -> str:
    session_id = f"session-{person_id}-{second_factor}"
    await store.insert_session(
        {
            "_id": digest(session_id),
            "person_id": person_id,
            "created_at": T0,
            "last_seen_at": T0,
            "idle_seconds": idle,
            "expires_at": T0 + timedelta(seconds=200),
            "second_factor": second_factor,
        }
    )
    return session_id


async def test_idle_and_absolute_expiry(store: IdentityStore) -> None:
    clock = Clock()
    verifier = StaffVerifier(store, cache_seconds=0, clock=clock)
    session_id = await session(store, await person(store, ["dispatcher"]))
    async with app_for(verifier) as http:
        cookie = {"Cookie": f"binhyen_session={session_id}"}
        assert (await http.get("/who", headers=cookie)).status_code == 200
        for step in (40, 40, 40, 40):  # a request every 40 s keeps it alive (idle 60 s)
            clock.now += timedelta(seconds=step)
            assert (await http.get("/who", headers=cookie)).status_code == 200
        clock.now += timedelta(seconds=41)  # 201 s after sign-in: past the absolute end
        assert (await http.get("/who", headers=cookie)).status_code == 401
    assert await store.session(digest(session_id)) is None  # deleted on sight


async def test_a_session_idle_too_long_ends_even_from_the_cache(store: IdentityStore) -> None:
    clock = Clock()
    verifier = StaffVerifier(store, cache_seconds=5, clock=clock)
    session_id = await session(store, await person(store, ["dispatcher"]))
    async with app_for(verifier) as http:
        cookie = {"Cookie": f"binhyen_session={session_id}"}
        assert (await http.get("/who", headers=cookie)).status_code == 200
        clock.now += timedelta(seconds=61)
        assert (await http.get("/who", headers=cookie)).status_code == 401


async def test_deactivation_is_seen_without_an_event_once_the_cache_expires(
    store: IdentityStore,
) -> None:
    ticks = [0.0]  # the cache's monotonic clock, moved by hand (no sleeping on a loaded host)
    verifier = StaffVerifier(store, cache_seconds=0.3, ticker=lambda: ticks[0])
    person_id = await person(store, ["dispatcher"])
    session_id = await session(store, person_id, idle=3600)
    async with app_for(verifier) as http:
        cookie = {"Cookie": f"binhyen_session={session_id}"}
        verifier.clock = lambda: T0 + timedelta(seconds=1)
        assert (await http.get("/who", headers=cookie)).status_code == 200
        await store.update_account(person_id, {"active": False})
        assert (await http.get("/who", headers=cookie)).status_code == 200  # cached
        ticks[0] = 0.35
        assert (await http.get("/who", headers=cookie)).status_code == 401


async def test_a_revocation_event_clears_every_cache_at_once(
    store: IdentityStore, nats_url: str, mongodb_url: str, nats_client: NatsClient
) -> None:
    settings = IdentitySettings(
        nats_url=nats_url,
        mongodb_url=mongodb_url,
        mongodb_database=store.db.name,
        identity_cache_seconds=5,
    )
    token = "byt_" + "k" * 43
    await store.insert_token(
        {
            "_id": "t-1",
            "digest": digest(token),
            "name": "Kiosk",
            "roles": ["analyst", "admin"],
            "wards": [],
            "created_at": T0,
            "last_used_at": None,
            "revoked_at": None,
        }
    )
    async with staff_verifier(settings, "tests") as verifier, app_for(verifier) as http:
        verifier.ticker = lambda: 0.0  # the cache never expires by itself: only the event clears
        bearer = {"Authorization": f"Bearer {token}"}
        answer = await http.get("/who", headers=bearer)
        assert answer.json()["roles"] == ["analyst"]  # a token never carries admin
        assert (await store.token("t-1"))["last_used_at"] is not None  # type: ignore[index]
        await store.revoke_token("t-1", T0, "a-1")
        assert (await http.get("/who", headers=bearer)).status_code == 200  # cached for 5 s
        event = StaffAccessRevoked(
            event_id="rev-1", occurred_at=T0, reason="token_revoked", token_id="t-1"
        )
        await nats_client.publish(IDENTITY_REVOKED, event_bytes(event))  # type: ignore[attr-defined]
        await eventually(lambda: verifier.revocations_heard, timeout=30)  # only a hang fails
        assert (await http.get("/who", headers=bearer)).status_code == 401


async def test_csrf_is_required_of_sessions_only(store: IdentityStore) -> None:
    verifier = StaffVerifier(store, cache_seconds=0, clock=lambda: T0)
    session_id = await session(store, await person(store, ["dispatcher"]))
    token = "byt_" + "c" * 43
    await store.insert_token(
        {
            "_id": "t-2",
            "digest": digest(token),
            "name": "Máy",
            "roles": ["dispatcher"],
            "wards": [],
            "created_at": T0,
            "last_used_at": T0,
            "revoked_at": None,
        }
    )
    async with app_for(verifier) as http:
        cookie = {"Cookie": f"binhyen_session={session_id}"}
        good = csrf_token(session_id)
        assert (await http.post("/act", headers=cookie)).status_code == 403
        wrong = await http.post("/act", headers={**cookie, "X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        assert (
            await http.post("/act", headers={**cookie, "X-CSRF-Token": good})
        ).status_code == 200
        form = await http.post("/act", headers=cookie, data={"csrf_token": good})
        assert form.status_code == 200
        other = csrf_token("another-session")
        assert (
            await http.post("/act", headers=cookie, data={"csrf_token": other})
        ).status_code == 403
        assert (await http.get("/who", headers=cookie)).status_code == 200  # reads need none
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await http.post("/act", headers=bearer)).status_code == 200


async def test_approver_role_waits_for_the_second_factor(store: IdentityStore) -> None:
    verifier = StaffVerifier(store, cache_seconds=0, clock=lambda: T0)
    approver = await person(store, ["approver", "editor"])
    without = await session(store, approver, second_factor=False)
    with_code = await session(store, approver, second_factor=True)
    async with app_for(verifier) as http:
        plain = await http.get("/who", headers={"Cookie": f"binhyen_session={without}"})
        assert plain.json() == {"id": approver, "roles": ["editor"], "withheld": ["approver"]}
        refused = await http.post(
            "/approve",
            headers={"Cookie": f"binhyen_session={without}", "X-CSRF-Token": csrf_token(without)},
        )
        assert refused.status_code == 403
        assert "xác thực hai bước" in refused.json()["detail"]
        allowed = await http.post(
            "/approve",
            headers={
                "Cookie": f"binhyen_session={with_code}",
                "X-CSRF-Token": csrf_token(with_code),
            },
        )
        assert allowed.status_code == 200


async def test_the_throttle_counts_per_name_and_per_address(store: IdentityStore) -> None:
    limits = Limits(
        account_failures=3,
        address_failures=5,
        window=timedelta(minutes=15),
        lockout=timedelta(minutes=15),
    )
    throttle = Throttle(store, limits, lambda name: f"k({name})")
    now = T0
    assert await throttle.failed("an", "10.0.0.1", now) is None
    assert await throttle.failed("an", "10.0.0.1", now) is None
    assert await throttle.failed("an", "10.0.0.1", now) == now + limits.lockout  # the name
    assert await throttle.locked_until("an", "10.0.0.9", now) == now + limits.lockout
    assert await throttle.locked_until("binh", "10.0.0.9", now) is None
    # Other names from the same address: the address locks at its own limit.
    assert await throttle.failed("binh", "10.0.0.1", now) is None
    assert await throttle.failed("chi", "10.0.0.1", now) == now + limits.lockout
    assert await throttle.locked_until("dung", "10.0.0.1", now) == now + limits.lockout
    assert await throttle.locked_until("dung", "10.0.0.2", now) is None
    # A success clears the name, not the address; the lock ends with its time.
    await throttle.succeeded("an")
    assert await throttle.locked_until("an", "10.0.0.9", now) is None
    later = now + limits.lockout + timedelta(seconds=1)
    assert await throttle.locked_until("dung", "10.0.0.1", later) is None
    # The stored keys are the keyed names, never a name as typed.
    keys = [doc["_id"] async for doc in store.throttle.find({})]
    assert not any(key.endswith(":an") for key in keys)
