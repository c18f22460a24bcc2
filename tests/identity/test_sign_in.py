"""Sign-in on the real stack: the right password and code work; every wrong one is refused with
one message and in about the same time whether or not the account exists; repeated failures
lock a name (existing or not) for a while, with a clear message."""

import statistics
import time

import httpx
import pytest

from tests.identity.conftest import (
    LOCKOUT_SECONDS,
    MAX_FAILURES,
    Person,
    new_name,
    new_person,
)
from tests.system.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REFUSED = "Sai tên đăng nhập, mật khẩu hoặc mã xác thực."


def attempt(stack: Stack, username: str, password: str, code: str | None = None) -> httpx.Response:
    body = {"username": username, "password": password}
    if code is not None:
        body["code"] = code
    return httpx.post(f"{stack.url('identity')}/auth/sign-in", json=body, timeout=30)


def test_right_password_and_code_sign_in_with_a_safe_cookie(stack: Stack, admin: Person) -> None:
    person = new_person(admin, ["dispatcher"], ["quang-phu"], second_factor=True)
    person.http.cookies.clear()
    response = person.sign_in()
    assert response.status_code == 200, response.text
    assert response.json()["second_factor"] is True
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    session = cookies["binhyen_session"]
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert "secure" not in session  # plain HTTP on loopback; compose sets "always" (HTTPS)
    assert "httponly" not in cookies["binhyen_csrf"]  # the page's script sends it back
    me = person.get("identity", "/auth/session").json()
    assert me["roles"] == ["dispatcher"]
    assert me["wards"] == ["quang-phu"]
    assert me["csrf_token"] == person.csrf["X-CSRF-Token"]
    # A recovery code works once in place of a TOTP code; new codes replace the old ones.
    first = person.recovery_codes[0]
    assert attempt(stack, person.username, person.password, first).status_code == 200
    again = attempt(stack, person.username, person.password, first)
    assert (again.status_code, again.json()["detail"]) == (401, REFUSED)
    renewed = person.post(
        "identity",
        "/me/recovery-codes",
        json={"password": person.password, "code": person.recovery_codes[1]},
    )
    assert renewed.status_code == 200, renewed.text
    old = attempt(stack, person.username, person.password, person.recovery_codes[2])
    assert old.status_code == 401
    new = attempt(stack, person.username, person.password, renewed.json()["codes"][0])
    assert new.status_code == 200


def test_every_refusal_has_one_message_and_about_the_same_time(stack: Stack, admin: Person) -> None:
    """No such name, a wrong password, a right password with a wrong or missing code: the same
    401 and body, and about the same time: each costs one Argon2id verification (~0.2 s here),
    so a path that skipped it (a name with no account answered at once) would be ~50 times
    faster. The medians stay within 50 % of each other on a loaded two-core machine."""
    rounds = 8  # one account per round: 3 failures each, under the lockout threshold
    people = [new_person(admin, ["officer"], second_factor=True) for _ in range(rounds)]
    kinds = {
        "unknown name": lambda i: attempt(stack, new_name("nobody"), "Sai mat khau 123456"),
        "wrong password": lambda i: attempt(
            stack, people[i].username, "Sai mat khau 123456", "000000"
        ),
        "wrong code": lambda i: attempt(stack, people[i].username, people[i].password, "000000"),
        "missing code": lambda i: attempt(stack, people[i].username, people[i].password),
    }
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    bodies = set()
    for round_ in range(rounds):
        for kind, send in kinds.items():
            start = time.perf_counter()
            response = send(round_)
            timings[kind].append(time.perf_counter() - start)
            assert response.status_code == 401, (kind, response.text)
            bodies.add(response.text)
    assert bodies == {f'{{"error":"sign_in_refused","detail":"{REFUSED}","errors":[]}}'}
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest <= fastest * 1.5, medians


def test_failures_lock_a_name_whether_or_not_it_exists(stack: Stack, admin: Person) -> None:
    person = new_person(admin, ["analyst"])
    ghost = new_name("ghost")
    answers: dict[str, list[httpx.Response]] = {person.username: [], ghost: []}
    for username in answers:
        for _ in range(MAX_FAILURES):
            answers[username].append(attempt(stack, username, "Khong dung dau 2026"))
    for responses in answers.values():
        assert [r.status_code for r in responses] == [401] * (MAX_FAILURES - 1) + [429]
    locked = answers[person.username][-1]
    assert locked.json()["error"] == "sign_in_locked"
    assert locked.json()["detail"].startswith("Tạm khoá đăng nhập vì nhập sai nhiều lần.")
    assert answers[ghost][-1].json() == locked.json()  # nothing tells the names apart
    assert int(locked.headers["retry-after"]) <= LOCKOUT_SECONDS + 1
    # While locked, even the right password is refused, with the same message.
    right = attempt(stack, person.username, person.password)
    assert (right.status_code, right.json()) == (429, locked.json())
    time.sleep(LOCKOUT_SECONDS + 0.5)
    assert attempt(stack, person.username, person.password).status_code == 200


def test_sign_in_page_works_without_script_and_refuses_a_forged_form(stack: Stack) -> None:
    from tools.localstack.demo_accounts import DEMO_PASSWORD

    with httpx.Client(base_url=stack.url("identity"), timeout=30) as browser:
        page = browser.get("/sign-in")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = {"username": "demo-analyst", "password": DEMO_PASSWORD}
        # Another site's form cannot know the page's value: refused, nobody signed in.
        forged = browser.post("/sign-in", data={**form, "csrf_token": "guess"})
        assert forged.status_code == 403
        assert "binhyen_session" not in browser.cookies
        # The refusal is a fresh form with a fresh value.
        token = forged.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = browser.post("/sign-in", data={**form, "csrf_token": token})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/account"
        account = browser.get("/account")
        assert "DEMO Lãnh đạo" in account.text
        # The sign-out form carries the session's CSRF token; without it, refused.
        csrf = account.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert browser.post("/sign-out", data={}).status_code == 403
        assert browser.get("/auth/session").status_code == 200
        assert browser.post("/sign-out", data={"csrf_token": csrf}).status_code == 303
        assert browser.get("/auth/session").status_code == 401


def test_an_optional_second_factor_can_be_turned_off_with_a_code(
    stack: Stack, admin: Person
) -> None:
    person = new_person(admin, ["officer"], second_factor=True)
    wrong = person.post(
        "identity",
        "/me/second-factor/disable",
        json={"password": person.password, "code": "000000"},
    )
    assert wrong.status_code == 422
    off = person.post(
        "identity",
        "/me/second-factor/disable",
        json={"password": person.password, "code": person.recovery_codes[0]},
    )
    assert off.status_code == 204, off.text
    assert attempt(stack, person.username, person.password).status_code == 200
    entries = admin.get("identity", f"/audit?actor_id={person.id}").json()
    actions = {e["action"] for e in entries}
    assert {"second_factor_enabled", "second_factor_disabled", "signed_in"} <= actions
