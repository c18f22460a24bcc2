"""Every console page in a real browser against the whole system: axe-core (from the npm
registry, `make install`, injected here only: never served to users) finds no serious or
critical violation, and a 360 × 740 phone has no sideways scroll. With BINHYEN_SCREENSHOTS=1
(`make screenshots`) each page is also photographed at 360 × 740 and 1366 × 768 into
var/screenshots/console/ (git-ignored).

A new page is one more line in PAGES: (name, who signs in, how to reach it)."""

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.events.tips import CaseStatus, TipPriority
from tests.browser import CHROMIUM
from tests.console.conftest import DESKTOP, PHONE, Console, fresh_totp_code, screenshot, send_tip
from tests.console.seed import seed_cases, stack_mongodb_url
from tests.system.stack import Stack
from tools.localstack.demo_accounts import DEMO_PASSWORD
from tools.localstack.servers import REPO_ROOT

AXE = REPO_ROOT / ".local" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`"),
    pytest.mark.skipif(not AXE.exists(), reason="no axe-core: run `make install`"),
]

OpenConsole = Callable[[dict[str, int]], Console]
SCREENSHOTS = os.environ.get("BINHYEN_SCREENSHOTS") == "1"


@dataclass(frozen=True)
class ConsolePage:
    name: str
    person: str | None  # DEMO username; None: not signed in
    route: str  # the address after the console's origin
    ready: str  # a selector shown once the page has its content


PAGES = [
    ConsolePage("sign-in", None, "/", "#sign-in-form"),
    ConsolePage("queue", "demo-dispatcher", "/#/", "#queue li"),
    ConsolePage("case", "demo-dispatcher", "/#/case/{case}", ".history li"),
    ConsolePage("notices-compose", "demo-editor", "/#/notices", "#notice-form"),
    ConsolePage(
        "approver-queue",
        "demo-approver",
        "/#/notices",
        "#approvals-empty:not([hidden]), #approvals li",
    ),
    ConsolePage("notice-page", "demo-editor", "/#/notice/{notice}", "#nv-title:not(:empty)"),
    ConsolePage("officer-forwards", "demo-officer", "/#/forwards", "#forwards-view h1"),
    ConsolePage("admin-accounts", "demo-admin", "/#/admin/accounts", "#accounts li"),
    ConsolePage("admin-tokens", "demo-admin", "/#/admin/tokens", "#token-form"),
    ConsolePage("admin-groups", "demo-admin", "/#/admin/groups", "#groups-page:not(:empty)"),
    ConsolePage("admin-audit", "demo-admin", "/#/admin/audit", "#audit li"),
    ConsolePage("dashboard-landing", "demo-analyst", "/#/dashboard", "#dashboard-view h1"),
    ConsolePage("dashboard", "demo-analyst", "/api/analytics/dashboard", "body[data-loaded='1']"),
]
SECOND_FACTOR = {"demo-admin", "demo-approver"}
BLOCKING = ("serious", "critical")
TALL = 6_000  # px: the whole queue (100 rows) at once


@pytest.fixture(scope="module")
def case_id(stack: Stack) -> str:
    """A case in the DEMO dispatcher's ward, for the case page; and an open case of every
    priority, so the queue shows each badge whatever the other tests left (a high badge's
    contrast once failed only when an earlier test had left a high case)."""
    send_tip(stack, f"Có người lạ đột nhập nhà {time.time_ns() % 10**6} ở phường Quang Phú")
    case = _first_case(stack)
    seed_cases(
        stack_mongodb_url(stack.banner),
        len(TipPriority),
        status=CaseStatus.VERIFYING,
        label=f"a11y-{time.time_ns() % 10**6}",
        priorities=list(TipPriority),
    )
    return case


def _first_case(stack: Stack) -> str:
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=stack.url("console")) as client:
        client.post(
            "/api/identity/auth/sign-in",
            json={"username": "demo-dispatcher", "password": DEMO_PASSWORD},
        ).raise_for_status()
        while time.monotonic() < deadline:
            items = client.get("/api/reports/cases?limit=1").json()["items"]
            if items:
                return str(items[0]["_id"] if "_id" in items[0] else items[0]["id"])
            time.sleep(0.2)
    raise AssertionError("no case reached the dispatcher's ward")


@pytest.fixture(scope="module")
def notice_id(stack: Stack) -> str:
    """A test-mode ward notice of the DEMO editor, for a notice's page."""
    with httpx.Client(base_url=stack.url("console")) as client:
        signed = client.post(
            "/api/identity/auth/sign-in",
            json={"username": "demo-editor", "password": DEMO_PASSWORD},
        )
        signed.raise_for_status()
        body = {
            "title": "Trang thông báo",
            "body": "Nội dung thử.",
            "category": "other",
            "severity": "Minor",
            "urgency": "Future",
            "certainty": "Likely",
            "targets": {"wards": ["quang-phu"]},
            "test_mode": True,
        }
        headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
        created = client.post("/api/broadcast/notices", json=body, headers=headers)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


@pytest.fixture(scope="module")
def signed_in(stack: Stack, browser: Any, case_id: str) -> Iterator[dict[str | None, Console]]:
    """One browser per person (signed in once), shared by that person's pages; after the cases
    exist (the queue loads once at sign-in: `goto` to another hash does not reload it)."""
    people: dict[str | None, Console] = {}
    for person in dict.fromkeys(p.person for p in PAGES):
        context = browser.new_context(viewport=PHONE, locale="vi-VN")
        console = Console(stack, context).open()
        if person is not None:
            code = fresh_totp_code() if person in SECOND_FACTOR else None
            console.sign_in_only(person, code=code)
        people[person] = console
    yield people
    for console in people.values():
        console.context.close()
    assert not [error for console in people.values() for error in console.errors]


def axe_violations(page: Any) -> list[dict[str, Any]]:
    # Playwright evaluates in the page without its policy's script-src: axe is never served.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [v for v in found if v["impact"] in BLOCKING]


@pytest.mark.parametrize("shown", PAGES, ids=[p.name for p in PAGES])
def test_a_page_has_no_serious_accessibility_violation_and_fits_a_phone(
    shown: ConsolePage, signed_in: dict[str | None, Console], case_id: str, notice_id: str
) -> None:
    console = signed_in[shown.person]
    page = console.page
    page.set_viewport_size(PHONE)
    page.goto(console.url + shown.route.format(case=case_id, notice=notice_id))
    page.locator(shown.ready).first.wait_for(timeout=30_000)
    # axe judges colour only on what is in the viewport: a phone's width, every row in view.
    page.set_viewport_size({"width": PHONE["width"], "height": TALL})
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in axe_violations(page)
    ]
    assert not problems, "\n".join(problems)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{shown.name}: {width} px wide on a 360-px phone"
    if SCREENSHOTS:
        screenshot(page, f"{shown.name}-360x740")
    page.set_viewport_size(DESKTOP)
    views = page.evaluate(VISIBLE_VIEWS)
    assert len(views) <= 1, f"{shown.name}: more than one view shown on a desktop: {views}"
    if SCREENSHOTS:
        screenshot(page, f"{shown.name}-1366x768")


# The console's views (one at a time); the dashboard, another page, has none of them.
VISIBLE_VIEWS = """[...document.querySelectorAll("main > section[id$='-view']")]
    .filter((view) => getComputedStyle(view).display !== "none").map((view) => view.id)"""
