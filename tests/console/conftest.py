"""The console against the whole system as `make run` starts it, in Debian's Chromium driven by
Playwright (the browser is `make browser`'s, never downloaded), and the doors a resident uses:
signed Zalo webhooks into ingest."""

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from shared.settings import ZaloSettings
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.system.stack import Stack, running_stack
from tools.demo_world import World
from tools.localstack.demo_accounts import DEMO_PASSWORD, DEMO_TOTP_SECRET
from tools.localstack.servers import REPO_ROOT
from tools.zalo_sim.events import encode, signed_request

WEBHOOKS = REPO_ROOT / "tests" / "data" / "zalo-webhooks"
SCREENSHOTS = REPO_ROOT / "var" / "screenshots" / "console"  # git-ignored
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("console-run")) as running:
        yield running


# Per module: sync Playwright keeps its event loop in this thread while it runs, and the
# in-process tests (test_proxy.py) need pytest-asyncio's loop there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Console:
    """One person's browser (its own context: own cookies) with one tab on the console;
    the page's script errors are collected, and a test fails on any."""

    def __init__(self, stack: Stack, context: BrowserContext):
        self.context = context
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.url = stack.url("console")

    def open(self) -> "Console":
        self.page.goto(f"{self.url}/")
        return self

    def sign_in(self, username: str = "demo-dispatcher") -> "Console":
        """A dispatcher: signed in once the live queue is connected."""
        self.sign_in_only(username)
        live = self.page.locator("#live-state", has_text="Đang cập nhật trực tiếp.")
        live.wait_for(timeout=30_000)
        return self

    def sign_in_only(self, username: str, code: str | None = None) -> "Console":
        page = self.page
        page.get_by_label("Tên đăng nhập").fill(username)
        page.get_by_label("Mật khẩu").fill(DEMO_PASSWORD)
        if code is not None:
            page.get_by_label("Mã xác thực 2 bước (nếu tài khoản có)").fill(code)
        page.get_by_role("button", name="Đăng nhập").click()
        signed_in = page.get_by_role("button", name="Đăng xuất")
        try:
            signed_in.wait_for(timeout=30_000)  # a hang, not a speed limit: a busy box is slow
        except Exception as exc:
            refusal = page.locator("#sign-in-error").text_content()
            raise AssertionError(f"{username} not signed in; the page says: {refusal!r}") from exc
        return self

    def row(self, text: str) -> Any:
        return self.page.locator("#queue li", has_text=text)


@pytest.fixture
def console(stack: Stack, browser: Browser) -> Iterator[Callable[[dict[str, int]], Console]]:
    """Opens a new person's browser at a viewport size; all closed after the test."""
    opened: list[Console] = []

    def open_console(viewport: dict[str, int]) -> Console:
        context = browser.new_context(viewport=viewport, locale="vi-VN")
        opened.append(Console(stack, context))
        return opened[-1].open()

    yield open_console
    for person in opened:
        person.context.close()
    assert not [error for person in opened for error in person.errors]


def send_tip(stack: Stack, text: str, location: tuple[str, str] | None = None) -> float:
    """A resident's message (and optionally a shared location) through a signed webhook, from
    an OA follower of the demo world who has not written before (replies reach followers
    only); returns when ingest answered (monotonic)."""
    sender = secrets.choice([f for f in World.load().follower_ids() if f not in USED_SENDERS])
    USED_SENDERS.add(sender)
    answered = _post(stack, _event("user_send_text", sender, text=text))
    if location is not None:
        body = _event("user_send_location", sender)
        coordinates = body["message"]["attachments"][0]["payload"]["coordinates"]
        coordinates["latitude"], coordinates["longitude"] = location
        _post(stack, body)
    return answered


USED_SENDERS: set[str] = set()


def _event(name: str, sender: str, **message: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text(encoding="utf-8"))
    body["timestamp"] = str(int(time.time() * 1000))
    body["sender"]["id"] = sender
    body["user_id_by_app"] = sender
    body["message"] |= {"msg_id": secrets.token_hex(10), **message}
    return body


def _post(stack: Stack, body: dict[str, Any]) -> float:
    settings = ZaloSettings()
    raw = encode(body)
    headers = signed_request(
        raw, settings.zalo_app_id, settings.zalo_oa_secret_key, body["timestamp"]
    )
    response = httpx.post(f"{stack.url('ingest')}/webhooks/zalo", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published", response.text
    return time.monotonic()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


_USED_TOTP_STEPS: set[int] = set()


def fresh_totp_code() -> str:
    """The DEMO TOTP code of a time step no sign-in of this run has used yet: identity accepts
    each step once per account (replay), and tests sign the same DEMO admin in more than once."""
    totp = pyotp.TOTP(DEMO_TOTP_SECRET)
    while (step := int(time.time()) // totp.interval) in _USED_TOTP_STEPS:
        time.sleep(1)
    _USED_TOTP_STEPS.add(step)
    return totp.at(step * totp.interval)
