"""The whole system as `make run` starts it (every service its own process, on loopback, with
its own NATS and MongoDB-wire server), shared by the identity tests; helpers that sign people
in through the public doors only.

The stack runs with a lower lockout threshold and a short lock (5 failures, 4 s), and a high
per-address limit (every test request comes from 127.0.0.1).
"""

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.system.stack import Stack, running_stack
from tools.localstack.demo_accounts import DEMO_PASSWORD, DEMO_TOTP_SECRET

STAFF_SERVICES = ("reports", "broadcast", "analytics", "identity")
# A GET every staff service answers for a person with dispatcher, analyst and editor roles.
PROBES = {
    "reports": "/cases",
    "broadcast": "/notices",
    "analytics": "/metrics/overview",
    "identity": "/auth/session",
}
MAX_FAILURES = 5
LOCKOUT_SECONDS = 4.0
STACK_ENV = {
    "SIGNIN_MAX_FAILURES": str(MAX_FAILURES),
    "SIGNIN_ADDRESS_MAX_FAILURES": "100000",
    "SIGNIN_LOCKOUT_MINUTES": str(LOCKOUT_SECONDS / 60),
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("identity-run")
    with running_stack(run_dir, **STACK_ENV) as running:
        yield running


@dataclass
class Person:
    """A person's browser: their own cookie jar, and what they know (never logged)."""

    stack: Stack
    username: str
    password: str
    totp_secret: str | None = None
    id: str = ""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    last_code_step: int = -1
    recovery_codes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        PEOPLE.append(self)

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.url(service)}{path}"

    def code(self) -> str:
        """A TOTP code of a step not used before: now, or the next step (the service accepts
        one step either side of now); waits only when both were used."""
        assert self.totp_secret is not None
        totp = pyotp.TOTP(self.totp_secret)
        step = max(totp.timecode(time.time()), self.last_code_step + 1)
        while step > totp.timecode(time.time()) + 1:
            time.sleep(0.5)
        self.last_code_step = step
        return totp.generate_otp(step)

    def sign_in(self, with_code: bool = True) -> httpx.Response:
        body: dict[str, Any] = {"username": self.username, "password": self.password}
        if with_code and self.totp_secret:
            body["code"] = self.code()
        response = self.http.post(self.url("identity", "/auth/sign-in"), json=body)
        if response.status_code == 200:
            self.id = response.json()["account"]["id"]
        return response

    @property
    def session(self) -> str | None:
        return self.http.cookies.get("binhyen_session")

    @property
    def csrf(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.http.cookies.get("binhyen_csrf") or ""}

    def get(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url(service, path), **kwargs)

    def post(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.csrf, **kwargs.pop("headers", {})}
        return self.http.post(self.url(service, path), headers=headers, **kwargs)

    def patch(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.csrf, **kwargs.pop("headers", {})}
        return self.http.patch(self.url(service, path), headers=headers, **kwargs)


PEOPLE: list["Person"] = []  # every browser the tests opened, closed with the stack


@pytest.fixture(scope="package")
def admin(stack: Stack) -> Iterator[Person]:
    """The DEMO admin of `make run`, signed in with password and TOTP code."""
    person = Person(stack, "demo-admin", DEMO_PASSWORD, DEMO_TOTP_SECRET)
    response = person.sign_in()
    assert response.status_code == 200, response.text
    yield person
    for browser in PEOPLE:
        browser.http.close()


def new_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_person(
    admin: Person,
    roles: list[str],
    wards: list[str] | None = None,
    *,
    second_factor: bool = False,
    prefix: str = "t",
) -> Person:
    """An account created by the admin, signed in once with its temporary password, which it
    changes (a new password of its own); with `second_factor`, TOTP enrolled and confirmed.
    The person is signed in at the end."""
    username = new_name(prefix)
    created = admin.post(
        "identity",
        "/accounts",
        json={
            "username": username,
            "name": f"Cán bộ {username}",
            "roles": roles,
            "wards": wards or [],
        },
    )
    assert created.status_code == 201, created.text
    temporary = created.json()["temporary_password"]
    person = Person(admin.stack, username, temporary)
    assert person.sign_in().status_code == 200
    new_password = f"Mat khau rieng {secrets.token_hex(6)}"
    changed = person.post(
        "identity",
        "/me/password",
        json={"current_password": temporary, "new_password": new_password},
    )
    assert changed.status_code == 204, changed.text
    person.password = new_password
    if second_factor:
        enrol(person)
    return person


def enrol(person: Person) -> list[str]:
    """Turn TOTP on for a signed-in person; the recovery codes."""
    started = person.post("identity", "/me/second-factor", json={"password": person.password})
    assert started.status_code == 200, started.text
    person.totp_secret = started.json()["secret"]
    assert started.json()["qr_svg"].startswith("<svg")
    confirmed = person.post("identity", "/me/second-factor/confirm", json={"code": person.code()})
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["codes"]
    person.recovery_codes = list(codes)
    return codes


def wait_refused_everywhere(
    request: Any, services: tuple[str, ...] = STAFF_SERVICES, timeout: float = 5.0
) -> float:
    """Poll `request(service)` on every service until each answers 401; the seconds it took.
    Fails if any service still accepts after `timeout`."""
    start = time.monotonic()
    pending = set(services)
    while pending:
        for service in sorted(pending):
            if request(service).status_code == 401:
                pending.discard(service)
        elapsed = time.monotonic() - start
        if pending and elapsed > timeout:
            raise AssertionError(f"still accepted after {elapsed:.1f} s by {sorted(pending)}")
        if pending:
            time.sleep(0.1)
    return time.monotonic() - start


def stack_env(stack: Stack) -> dict[str, str]:
    """What a command needs to reach this stack's identity store (its MongoDB and key)."""
    mongodb_url = stack.banner.split("MongoDB-wire", 1)[1].split()[0]
    stored = dict(
        line.split("=", 1)
        for line in (stack.run_dir / "secrets.env").read_text().splitlines()
        if "=" in line
    )
    return os.environ | {"MONGODB_URL": mongodb_url, "IDENTITY_KEY": stored["IDENTITY_KEY"]}
