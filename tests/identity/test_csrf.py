"""State-changing requests made with a session cookie must carry its CSRF token, on every
service: a form posted from another site (the browser adds the cookie, nobody can add the
token) is refused and changes nothing. A bearer token needs none. On the real stack."""

import httpx
import pytest

from tests.identity.conftest import Person, new_person
from tests.system.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def forged_form(person: Person, service: str, path: str, fields: dict[str, str]) -> httpx.Response:
    """What another site's auto-submitting form makes the browser send: the cookie rides
    along (SameSite=Lax still sends it on a top-level POST from some browsers' old modes, and
    from a sibling site), the body is a form, there is no X-CSRF-Token."""
    return httpx.post(
        f"{person.stack.url(service)}{path}",
        data=fields,
        cookies={"binhyen_session": person.session or ""},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )


def test_form_posts_without_the_csrf_token_are_refused_everywhere(
    stack: Stack, admin: Person
) -> None:
    person = new_person(admin, ["dispatcher", "editor"], ["quang-phu"])
    targets = {
        "identity": ("/auth/sign-out", {}),
        "reports": ("/cases/any-case/notes", {"text": "x"}),
        "broadcast": ("/notices/any-notice/cancel", {}),
    }
    for service, (path, fields) in targets.items():
        refused = forged_form(person, service, path, fields)
        assert refused.status_code == 403, (service, refused.text)
        assert refused.json()["error"] == "csrf"
        assert "CSRF" in refused.json()["detail"]
        wrong = forged_form(person, service, path, {**fields, "csrf_token": "0" * 64})
        assert wrong.status_code == 403, service
    # Nothing happened: the session still works.
    assert person.get("reports", "/cases").status_code == 200
    # The same requests with the token pass the CSRF check (and then meet the route's own
    # answers: no such case, no such notice).
    token = person.csrf["X-CSRF-Token"]
    assert (
        forged_form(person, "reports", "/cases/any-case/notes", {"csrf_token": token}).status_code
        != 403
    )
    assert person.post("reports", "/cases/any-case/notes", json={"text": "x"}).status_code == 404


def test_a_bearer_token_needs_no_csrf_token(stack: Stack, admin: Person) -> None:
    secret = admin.post(
        "identity", "/tokens", json={"name": "Biên tập tự động", "roles": ["editor"]}
    ).json()["secret"]
    response = httpx.post(
        f"{stack.url('broadcast')}/notices/any-notice/cancel",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 404  # past authentication, to the route itself
