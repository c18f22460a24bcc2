"""The fake's token endpoint: form-encoded, `secret_key` header, single-use refresh tokens."""

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.fake_zalo import FakeZalo

APP_ID = "360846524940903967"
SECRET = "test-app-secret-key"


@pytest.fixture
async def http(fake_zalo: FakeZalo) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_zalo.base_url) as client:
        yield client


async def token_call(
    http: httpx.AsyncClient, form: dict[str, str], secret: str | None = SECRET
) -> dict[str, Any]:
    headers = {"secret_key": secret} if secret else {}
    response = await http.post("/v4/oa/access_token", data=form, headers=headers)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def refresh_form(token: str = "fake-initial-refresh-token") -> dict[str, str]:
    return {"app_id": APP_ID, "refresh_token": token, "grant_type": "refresh_token"}


async def test_refresh_returns_a_new_pair_with_string_expiry(http: httpx.AsyncClient) -> None:
    answer = await token_call(http, refresh_form())
    assert set(answer) == {"access_token", "refresh_token", "expires_in"}
    assert answer["expires_in"] == "90000"
    assert answer["refresh_token"] != "fake-initial-refresh-token"


async def test_refresh_token_is_single_use_and_old_access_token_dies(
    http: httpx.AsyncClient,
) -> None:
    fresh = await token_call(http, refresh_form())
    reused = await token_call(http, refresh_form())
    assert reused["error"] < 0
    assert "access_token" not in reused
    old = await http.get("/v2.0/oa/getoa", headers={"access_token": "fake-initial-access-token"})
    assert old.json()["error"] == -216
    new = await http.get("/v2.0/oa/getoa", headers={"access_token": fresh["access_token"]})
    assert new.json()["error"] == 0


@pytest.mark.parametrize(
    ("form", "secret"),
    [
        (refresh_form(), None),
        (refresh_form(), "wrong"),
        (refresh_form() | {"app_id": "1"}, SECRET),
        (refresh_form() | {"grant_type": "password"}, SECRET),
    ],
)
async def test_refused_without_consuming_the_token(
    http: httpx.AsyncClient, fake_zalo: FakeZalo, form: dict[str, str], secret: str | None
) -> None:
    answer = await token_call(http, form, secret)
    assert answer["error"] < 0
    assert "access_token" not in answer
    assert "error_description" in answer
    assert "access_token" in await token_call(http, refresh_form())


async def test_json_body_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v4/oa/access_token", json=refresh_form(), headers={"secret_key": SECRET}
    )
    assert response.json()["error"] < 0


async def test_authorization_code_with_pkce_is_single_use(
    http: httpx.AsyncClient, fake_zalo: FakeZalo
) -> None:
    verifier = "a-long-random-code-verifier-0123456789"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = fake_zalo.admin.oauth_code(challenge=challenge.rstrip(b"=").decode())
    form = {"app_id": APP_ID, "code": code, "grant_type": "authorization_code"}
    wrong = await token_call(http, form | {"code_verifier": "other"})
    assert wrong["error"] < 0
    code = fake_zalo.admin.oauth_code(challenge=challenge.rstrip(b"=").decode())
    form["code"] = code
    assert "access_token" in await token_call(http, form | {"code_verifier": verifier})
    assert (await token_call(http, form | {"code_verifier": verifier}))["error"] < 0
