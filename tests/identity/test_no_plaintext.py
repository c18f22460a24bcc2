"""Passwords, codes, session ids and tokens appear nowhere in plain form: not in any service's
log, not on any NATS stream or the revocation subject, not in any MongoDB collection. Every
credential is made and used through the public doors of the real stack, then all three are
read whole."""

import asyncio
import contextlib
import json
from typing import Any

import httpx
import nats
import pytest
from bson import json_util
from nats.js.errors import BadRequestError, NotFoundError
from pymongo import MongoClient

from shared.events.identity import StaffAccessRevoked
from shared.identity.verifier import csrf_token
from shared.subjects import IDENTITY_REVOKED
from tests.contracts.golden import check_golden
from tests.identity.conftest import (
    PROBES,
    STAFF_SERVICES,
    Person,
    enrol,
    new_person,
    stack_env,
    wait_refused_everywhere,
)
from tests.system.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def stream_messages(nats_url: str) -> list[bytes]:
    """Every message of every stream (KV buckets included), data and headers."""
    nc = await nats.connect(nats_url)
    found: list[bytes] = []
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if not info.state.messages:
                continue
            for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                with contextlib.suppress(NotFoundError, BadRequestError):
                    msg = await js.get_msg(name, seq)
                    found.append((msg.data or b"") + json.dumps(msg.headers or {}).encode())
    finally:
        await nc.close()
    return found


class Revocations:
    """What is published on `identity.revoked` while the test runs."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url, self.messages = nats_url, []
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> "Revocations":
        async def start() -> Any:
            nc = await nats.connect(self.nats_url)

            async def keep(msg: Any) -> None:
                self.messages.append(msg.data)

            await nc.subscribe(IDENTITY_REVOKED, cb=keep)
            await nc.flush()
            return nc

        self.nc = self.loop.run_until_complete(start())
        return self

    def collect(self, seconds: float = 0.5) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def test_no_credential_is_stored_logged_or_published_as_written(
    stack: Stack, admin: Person
) -> None:
    secrets: list[str] = []
    with Revocations(stack.nats_url) as revocations:
        person = new_person(admin, ["dispatcher", "analyst", "editor"], ["quang-phu"])
        secrets.append(person.password)
        codes = enrol(person)
        assert person.totp_secret is not None
        secrets += [person.totp_secret, *codes, *(c.replace("-", "") for c in codes)]
        # A password typed into the name field by mistake must not be kept either.
        typo = httpx.post(
            f"{stack.url('identity')}/auth/sign-in",
            json={"username": person.password, "password": "x"},
            timeout=30,
        )
        assert typo.status_code == 401
        person.http.cookies.clear()
        assert person.sign_in().status_code == 200
        assert person.session is not None
        secrets += [person.session, csrf_token(person.session)]
        for service in STAFF_SERVICES:
            assert person.get(service, PROBES[service]).status_code == 200
        reset = admin.post("identity", f"/accounts/{person.id}/reset", json={})
        secrets.append(reset.json()["temporary_password"])
        created = admin.post(
            "identity",
            "/tokens",
            json={"name": "Bảng kiosk", "roles": ["analyst"], "wards": ["quang-phu"]},
        ).json()
        token = created["secret"]
        secrets += [token, token.removeprefix("byt_")]
        answer = httpx.get(
            f"{stack.url('analytics')}/metrics/overview",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200
        admin.post("identity", f"/tokens/{created['token']['id']}/revoke")
        wait_refused_everywhere(
            lambda s: httpx.get(
                f"{stack.url(s)}{PROBES[s]}", headers={"Authorization": f"Bearer {token}"}
            )
        )
        revocations.collect()

    published = revocations.messages
    assert published, "no revocation announced"
    for data in published:
        event = StaffAccessRevoked.model_validate_json(data)
        assert event.reason in {
            "password_reset",
            "token_revoked",
            "second_factor_changed",
            "password_changed",
        }
        check_golden(IDENTITY_REVOKED, data)

    logs = "\n".join(p.read_text(errors="replace") for p in stack.run_dir.glob("*.log"))
    streams = b"\n".join(asyncio.run(stream_messages(stack.nats_url))).decode(errors="replace")
    env = stack_env(stack)
    with MongoClient(env["MONGODB_URL"]) as client:
        db = client["binhyen"]
        names = db.list_collection_names()
        dump = "\n".join(json_util.dumps(list(db[name].find())) for name in names)
    assert {"identity_accounts", "identity_sessions", "identity_tokens", "audit_log"} <= set(names)
    revoked = b"\n".join(published).decode()
    for secret in secrets:
        assert len(secret) >= 12
        for where, text in (
            ("logs", logs),
            ("streams", streams),
            ("database", dump),
            ("identity.revoked", revoked),
        ):
            assert secret not in text, f"a credential in plain form in the {where}"
    # The store does hold what it needs: hashes, sealed secrets.
    assert "$argon2id$" in dump
