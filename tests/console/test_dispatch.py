"""The dispatcher's tools of dispatch.js in a real browser against the whole system: assign,
move to another ward, merge a suggested duplicate, the resident's photos, triage reasons in
Vietnamese, the category and time filters; and acknowledge → reply → resolve as the resident
(the fake Zalo's chat) and the leaders (analytics' response times) see it."""

import secrets
import struct
import time
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Route

from shared.events.tips import CaseStatus
from tests.browser import CHROMIUM
from tests.console.conftest import (
    DESKTOP,
    PHONE,
    USED_SENDERS,
    Console,
    _event,
    _post,
    fresh_totp_code,
    screenshot,
    send_tip,
)
from tests.console.seed import seed_cases, stack_mongodb_url
from tests.polling import eventually_blocking
from tests.system.stack import Stack
from tools.demo_world import World

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`"),
]

OpenConsole = Callable[[dict[str, int]], Console]
ADMIN = {"Authorization": "Bearer demo-admin"}  # make run's DEMO static tokens
ANALYST = {"Authorization": "Bearer demo-analyst"}


def tiny_png() -> bytes:
    """A 1×1 PNG: what the stand-in for Zalo's photo CDN answers."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xc1\x12\x1f")
    body = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def new_sender() -> str:
    sender = secrets.choice([f for f in World.load().follower_ids() if f not in USED_SENDERS])
    USED_SENDERS.add(sender)
    return sender


def send_tip_with_photo(stack: Stack, text: str, photo_url: str) -> None:
    """A resident's text, then a photo of theirs (one case: reports groups them)."""
    sender = new_sender()
    _post(stack, _event("user_send_text", sender, text=text))
    image = _event("user_send_image", sender)
    image["message"]["attachments"][0]["payload"]["url"] = photo_url
    _post(stack, image)


def open_case(desk: Console, marker: str) -> str:
    desk.row(marker).locator("a").click()
    desk.page.locator(".said", has_text=marker).wait_for()
    return str(desk.page.evaluate("decodeURIComponent(location.hash.split('/').pop())"))


def stored(stack: Stack, case_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{stack.url('reports')}/cases/{case_id}", headers=ADMIN)
    case: dict[str, Any] = answer.json()
    return case


def test_photos_reasons_assign_to_oneself_and_move_to_another_ward(
    stack: Stack, console: OpenConsole
) -> None:
    desk = console(PHONE)
    served: list[str] = []

    def zalo_cdn(route: Route) -> None:
        # Zalo's CDN is off loopback: a stand-in answers, and counts what the page asked.
        served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=tiny_png())

    desk.context.route("https://*.zdn.vn/**", zalo_cdn)
    desk.sign_in()
    marker = f"nhà số {time.time_ns() % 10**6}"
    photo_url = f"https://photo-stal.zdn.vn/sim/{marker.split()[-1]}.jpg"
    send_tip_with_photo(stack, f"Trộm đột nhập {marker} ở phường Quang Phú", photo_url)
    desk.row(marker).wait_for(timeout=30_000)
    case_id = open_case(desk, marker)
    page = desk.page

    photo = page.get_by_role("img", name="Ảnh người dân gửi (1/1)")
    photo.wait_for(timeout=30_000)
    assert photo.get_attribute("src") == photo_url
    # Loaded, not refused by the page's policy (a refused image gets the "không tải được" text).
    page.wait_for_function("() => document.querySelector('img.photo')?.naturalWidth > 0")
    assert served == [photo_url]
    policy = page.request.get(f"{desk.url}/").headers["content-security-policy"]
    assert "img-src 'self' data: https://*.zdn.vn;" in policy

    reasons = page.locator("section.card", has_text="Lý do phân loại")
    reasons.locator("li", has_text="Phường/xã: tin nhắn nêu tên “Quang Phú”").wait_for()
    assert "ward." not in (reasons.text_content() or "")  # no raw rule codes

    assign = page.locator("#assign-form")
    assert "Người xử lý: chưa phân công" in (assign.text_content() or "")
    assign.get_by_role("button", name="Nhận xử lý").click()
    page.locator("#action-result", has_text="Bạn đã nhận xử lý tin báo.").wait_for()
    assign.locator(".assignee", has_text="bạn (DEMO Trực ban Quang Phú)").wait_for()
    page.locator(".facts .status", has_text="Đã phân công").wait_for()
    history = page.locator(".history li", has_text="Chuyển trạng thái: Đã phân công")
    history.wait_for()  # in words, not reports' `status=assigned, outcome=None, …`
    assert "(người xử lý: bạn (DEMO Trực ban Quang Phú))" in (history.text_content() or "")
    me = page.evaluate("window.Console.state.me.id")
    case = stored(stack, case_id)
    assert (case["assignee"], case["status"]) == (me, "assigned")
    screenshot(page, "case-dispatch-360")

    move = page.locator("#move-form")
    move.get_by_role("button", name="Chuyển phường/xã").click()
    page.locator("#action-result", has_text="Hãy chọn phường/xã").wait_for()  # checked first
    move.get_by_label("Phường/xã mới").select_option(label="Bắc Lý")
    move.get_by_role("button", name="Chuyển phường/xã").click()
    page.locator("#notice", has_text="sang Bắc Lý. Tin báo không còn trong hàng đợi").wait_for()
    page.locator("#queue-view").wait_for()
    assert desk.row(marker).count() == 0
    assert stored(stack, case_id)["ward"] == "bac-ly"


def test_a_suggested_duplicate_is_merged(stack: Stack, console: OpenConsole) -> None:
    desk = console(DESKTOP).sign_in()
    number = time.time_ns() % 10**6
    first, second = f"kho số {number}", f"kho so {number}"
    send_tip(stack, f"Cháy {first} ở phường Quang Phú, lửa đang bốc cao, khói đen")
    desk.row(first).wait_for(timeout=30_000)
    send_tip(stack, f"chay {second} o phuong quang phu, khoi den mu mit, lua boc cao")
    desk.row(second).wait_for(timeout=30_000)
    original_id = open_case(desk, first)
    original_ref = stored(stack, original_id)["ref"]
    page = desk.page
    page.goto(f"{desk.url}/#/")
    duplicate_id = open_case(desk, second)

    merge = page.locator("#merge-form")
    merge.locator(".merge-about", has_text=f"tin báo {original_ref}").wait_for(timeout=30_000)
    merge.get_by_role("button", name="Gộp vào tin báo gốc").click()
    page.locator("#action-result", has_text="Hãy xác nhận đã đọc cả hai tin báo").wait_for()
    assert stored(stack, duplicate_id)["status"] != "duplicate"  # nothing sent unconfirmed
    merge.get_by_label("Tôi đã đọc cả hai tin báo: đây là cùng một vụ việc.").check()
    merge.get_by_role("button", name="Gộp vào tin báo gốc").click()
    page.locator("#action-result", has_text="Đã gộp vào tin báo gốc.").wait_for()
    page.locator(".facts .status", has_text="Trùng (đã gộp)").wait_for()
    merged = stored(stack, duplicate_id)
    assert (merged["status"], merged["merged_into"]) == ("duplicate", original_id)

    page.locator(".merged").get_by_role("link", name="tin báo gốc").click()
    page.locator(".history li", has_text="Gộp tin trùng").wait_for()
    assert desk.row(second).count() == 0  # a merged duplicate leaves the open queue


def test_the_queue_filters_by_category_and_time(stack: Stack, console: OpenConsole) -> None:
    desk = console(DESKTOP).sign_in()
    number = time.time_ns() % 10**6
    fraud, theft = f"tài khoản {number}", f"xe đạp {number}"
    send_tip(stack, f"Có người gọi điện lừa chuyển tiền vào {fraud}, phường Quang Phú")
    send_tip(stack, f"Mất trộm {theft} ở phường Quang Phú")
    desk.row(fraud).wait_for(timeout=30_000)
    desk.row(theft).wait_for(timeout=30_000)
    page = desk.page
    filters = page.locator("#filters")

    with page.expect_request(lambda r: "/api/reports/cases?" in r.url) as asked:
        filters.get_by_label("Nhóm vụ việc").select_option(label="Lừa đảo")
    assert parse_qs(urlparse(asked.value.url).query)["category"] == ["fraud"]
    desk.row(theft).wait_for(state="detached", timeout=30_000)
    assert desk.row(fraud).count() == 1
    later = f"ví điện tử {number}"
    send_tip(stack, f"Mất trộm xe máy ở phường Quang Phú, {later} nữa")  # live, not fraud
    send_tip(stack, f"Kẻ gian giả danh công an lừa chuyển tiền {later}, phường Quang Phú")
    desk.row(later).wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)
    assert desk.row(later).count() == 1  # the theft tip stayed out

    with page.expect_request(lambda r: "/api/reports/cases?" in r.url) as asked:
        filters.get_by_label("Thời gian nhận").select_option(label="1 giờ qua")
    since = parse_qs(urlparse(asked.value.url).query)["since"][0]
    hour_ago = time.time() - 3600
    assert abs(datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() - hour_ago) < 120
    desk.row(fraud).wait_for(timeout=30_000)  # received minutes ago: kept
    filters.get_by_label("Nhóm vụ việc").select_option(label="Tất cả")
    desk.row(theft).wait_for(timeout=30_000)


def response_row(stack: Stack) -> dict[str, Any]:
    body = httpx.get(f"{stack.url('analytics')}/metrics/response-times", headers=ANALYST).json()
    rows = [w for w in body["wards"] if w["ward"] == "quang-phu"]
    return rows[0] if rows else {"cases": 0, "responded": 0, "closed": 0}


def test_acknowledge_reply_resolve_reach_the_resident_and_the_response_times(
    stack: Stack, console: OpenConsole
) -> None:
    desk = console(PHONE).sign_in()
    sender = new_sender()
    marker = f"cổng số {time.time_ns() % 10**6}"
    _post(stack, _event("user_send_text", sender, text=f"Có kẻ lạ trèo {marker} phường Quang Phú"))
    desk.row(marker).wait_for(timeout=30_000)
    eventually_blocking(lambda: response_row(stack)["cases"] > 0)
    before = response_row(stack)
    open_case(desk, marker)
    page = desk.page

    # Acknowledge, answer the resident, take the case, close it (test_queue.py goes through
    # "verifying" and a note; here: straight from "assigned").
    steps = (
        ("button", "Tiếp nhận", "Đã tiếp nhận tin báo."),
        ("reply", "Gửi trả lời", "Đã gửi trả lời qua Zalo."),
        ("button", "Nhận xử lý", "Bạn đã nhận xử lý tin báo."),
        ("resolve", "Cập nhật", "Đã cập nhật trạng thái."),
    )
    answer = f"Công an phường đã nhận tin {marker} và cử người đến."
    for step, button, done in steps:
        if step == "reply":
            page.locator("#reply-form textarea").fill(answer)
        if step == "resolve":
            page.get_by_label("Trạng thái mới").select_option("resolved")
            page.get_by_label("Kết quả (khi đã giải quyết)").select_option("verified_handled")
        page.get_by_role("button", name=button).click()
        page.locator("#action-result", has_text=done).wait_for()
    page.locator(".facts .status", has_text="Đã giải quyết").wait_for()

    # The resident's chat on the fake Zalo: the reference code first, then the staff's answer.
    chat = [
        m
        for m in httpx.get(f"{stack.url('fake-zalo')}/_admin/messages").json()
        if m.get("user_id") == sender
    ]
    assert len(chat) == 2, chat
    assert answer in chat[-1]["text"]
    # Leaders' response times count this case as responded to and closed.
    eventually_blocking(
        lambda: (
            response_row(stack)["responded"] > before["responded"]
            and response_row(stack)["closed"] > before["closed"]
        )
    )
    after = response_row(stack)
    assert after["response_median_min"] is not None
    assert after["closure_median_min"] is not None


def test_an_admin_assigns_a_case_to_a_dispatcher_of_its_ward(
    stack: Stack, console: OpenConsole
) -> None:
    """Identity lets an admin read the staff accounts: the case's ward's dispatchers are
    offered by name (a dispatcher, who may not read them, gets "Nhận xử lý" only)."""
    marker = f"ngõ {time.time_ns() % 10**6}"
    send_tip(stack, f"Mất trộm xe đạp ở {marker} phường Quang Phú")
    admin = console(DESKTOP)
    admin.sign_in_only("demo-admin", code=fresh_totp_code())
    admin.row(marker).wait_for(timeout=30_000)
    case_id = open_case(admin, marker)
    page = admin.page
    assign = page.locator("#assign-form")
    people = assign.get_by_label("Giao cho cán bộ của phường/xã")
    people.wait_for(timeout=30_000)
    names = people.locator("option").all_text_contents()
    assert "DEMO Trực ban Quang Phú" in names
    assert "DEMO Biên tập viên" not in names  # not a dispatcher or officer
    assign.get_by_role("button", name="Phân công", exact=True).click()
    page.locator("#action-result", has_text="Hãy chọn cán bộ").wait_for()  # checked first
    people.select_option(label="DEMO Trực ban Quang Phú")
    assign.get_by_role("button", name="Phân công", exact=True).click()
    assign.locator(".assignee", has_text="Người xử lý: DEMO Trực ban Quang Phú").wait_for()
    accounts = page.evaluate("window.Console.api('identity', '/accounts?limit=500')")
    dispatcher = next(a for a in accounts["items"] if a["username"] == "demo-dispatcher")
    assert stored(stack, case_id)["assignee"] == dispatcher["id"]


def test_a_long_queue_shows_a_hundred_rows_urgent_first_then_more(
    stack: Stack, console: OpenConsole
) -> None:
    """110 rejected cases (out of the other tests' open queue): the list reads them all, shows
    100 in order (urgent, high, normal, low; newest first within each) and 10 more on
    request."""
    label = f"hồ sơ cũ {time.time_ns() % 10**6}"
    seed_cases(stack_mongodb_url(stack.banner), 110, status=CaseStatus.REJECTED, label=label)
    desk = console(DESKTOP).sign_in()
    page = desk.page
    page.locator("#filters").get_by_label("Trạng thái").select_option(label="Đã từ chối")
    page.locator("#queue-count", has_text="Đang hiển thị 100 / 110 tin báo.").wait_for()
    rows = page.locator("#queue li", has_text=label)
    assert rows.count() == 100
    ranks = ["urgent", "high", "normal", "low"]
    shown = [
        ranks.index(c or "")
        for c in page.eval_on_selector_all("#queue li", "rows => rows.map((row) => row.className)")
    ]
    assert shown == sorted(shown)  # never a row below one of lower priority
    assert shown[0] == 0  # urgent on top
    page.get_by_role("button", name="Hiển thị thêm 10 tin báo").click()
    page.locator("#queue-count", has_text="Đang hiển thị 110 / 110 tin báo.").wait_for()
    assert rows.count() == 110
    assert page.get_by_role("button", name="Hiển thị thêm", exact=False).is_hidden()
