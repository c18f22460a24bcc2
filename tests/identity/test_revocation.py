"""One verification for every service, on the real stack: a session cookie kept after sign-out,
deactivation or a password reset, and a revoked API token, are refused by every service (reports,
broadcast, analytics, identity) within 5 s, without a restart; new roles apply as fast."""

import httpx
import pytest

from tests.identity.conftest import (
    PROBES,
    STAFF_SERVICES,
    Person,
    new_person,
    wait_refused_everywhere,
)
from tests.system.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVERY_ROLE_THAT_READS = ["dispatcher", "analyst", "editor"]


def stolen_cookie(stack: Stack, session: str) -> object:
    """A request with nothing but a copied session cookie, as a thief would send it."""

    def request(service: str) -> httpx.Response:
        return httpx.get(
            f"{stack.url(service)}{PROBES[service]}",
            cookies={"binhyen_session": session},
            timeout=10,
        )

    return request


def accepted_everywhere(request: object) -> None:
    for service in STAFF_SERVICES:
        response = request(service)  # type: ignore[operator]
        assert response.status_code == 200, (service, response.text)


def test_a_cookie_kept_after_sign_out_is_refused_by_every_service(
    stack: Stack, admin: Person
) -> None:
    person = new_person(admin, EVERY_ROLE_THAT_READS, ["quang-phu"])
    assert person.session is not None
    thief = stolen_cookie(stack, person.session)
    accepted_everywhere(thief)
    assert person.post("identity", "/auth/sign-out").status_code == 204
    took = wait_refused_everywhere(thief)
    assert took < 5.0
    assert person.get("reports", "/cases").status_code == 401  # and the person's own browser


def test_deactivation_ends_every_session_on_every_service(stack: Stack, admin: Person) -> None:
    person = new_person(admin, EVERY_ROLE_THAT_READS, ["quang-phu"])
    assert person.session is not None
    thief = stolen_cookie(stack, person.session)
    accepted_everywhere(thief)
    deactivated = admin.post("identity", f"/accounts/{person.id}/deactivate")
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False
    assert wait_refused_everywhere(thief) < 5.0
    # Nor can the person sign in again (the same message as a wrong password).
    again = person.sign_in()
    assert again.status_code == 401
    assert admin.post("identity", f"/accounts/{person.id}/activate").status_code == 200
    assert person.sign_in().status_code == 200


def test_a_password_reset_ends_every_session(stack: Stack, admin: Person) -> None:
    person = new_person(admin, EVERY_ROLE_THAT_READS, ["quang-phu"])
    assert person.session is not None
    thief = stolen_cookie(stack, person.session)
    reset = admin.post("identity", f"/accounts/{person.id}/reset", json={})
    assert reset.status_code == 200, reset.text
    assert wait_refused_everywhere(thief) < 5.0
    person.password = reset.json()["temporary_password"]
    assert person.sign_in().status_code == 200
    # A temporary password opens nothing but changing it.
    assert person.get("reports", "/cases").status_code == 403
    assert person.get("identity", "/auth/session").json()["withheld_because"] == ("password_change")


def test_a_revoked_token_is_refused_by_every_service_within_5_s(
    stack: Stack, admin: Person
) -> None:
    created = admin.post(
        "identity",
        "/tokens",
        json={
            "name": "Kiosk phòng trực ban",
            "roles": EVERY_ROLE_THAT_READS,
            "wards": ["quang-phu"],
        },
    )
    assert created.status_code == 201, created.text
    token, secret = created.json()["token"], created.json()["secret"]
    assert secret.startswith("byt_")

    def machine(service: str) -> httpx.Response:
        return httpx.get(
            f"{stack.url(service)}{PROBES[service]}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        )

    accepted_everywhere(machine)
    listed = {t["id"]: t for t in admin.get("identity", "/tokens").json()}
    assert listed[token["id"]]["last_used_at"] is not None
    assert secret not in admin.get("identity", "/tokens").text  # shown once, never again
    revoked = admin.post("identity", f"/tokens/{token['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert wait_refused_everywhere(machine) < 5.0


def test_a_token_never_holds_admin_or_approver(admin: Person) -> None:
    for role in ("admin", "approver"):
        refused = admin.post("identity", "/tokens", json={"name": "x", "roles": [role]})
        assert refused.status_code == 422, refused.text


def test_new_wards_apply_on_every_service_at_once(stack: Stack, admin: Person) -> None:
    person = new_person(admin, ["dispatcher"], ["quang-phu"])
    assert person.get("reports", "/cases?ward=bac-ly").status_code == 403
    changed = admin.patch("identity", f"/accounts/{person.id}", json={"wards": ["bac-ly"]})
    assert changed.status_code == 200, changed.text
    assert person.get("reports", "/cases?ward=bac-ly").status_code == 200
    assert person.get("reports", "/cases?ward=quang-phu").status_code == 403


def test_an_open_live_queue_ends_when_the_session_is_revoked(stack: Stack, admin: Person) -> None:
    person = new_person(admin, ["dispatcher"], ["quang-phu"])
    url = f"{stack.url('reports')}/cases/stream"
    with httpx.stream(
        "GET", url, cookies={"binhyen_session": person.session or ""}, timeout=15
    ) as live:
        assert live.status_code == 200
        lines = live.iter_lines()
        assert next(lines) == ": connected"
        assert person.post("identity", "/auth/sign-out").status_code == 204
        rest = list(lines)  # ends by itself (a read timeout would raise)
    assert all(line.startswith(":") or not line for line in rest)
