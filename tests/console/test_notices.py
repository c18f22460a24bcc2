"""The editor's compose form and the approver's queue in a real browser against the whole
system: an all-group notice waits for a second person, who sees who wrote it and approves it."""

import time
from collections.abc import Callable

import pytest

from tests.browser import CHROMIUM
from tests.console.conftest import DESKTOP, PHONE, Console, fresh_totp_code
from tests.system.stack import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`"),
]

OpenConsole = Callable[[dict[str, int]], Console]


def test_an_all_group_notice_waits_for_a_second_person_who_approves_it(
    stack: Stack, console: OpenConsole
) -> None:
    editor = console(PHONE).sign_in_only("demo-editor")
    page = editor.page
    page.get_by_role("heading", name="Soạn thông báo").wait_for()  # an editor lands here
    title = f"Cảnh giác trộm cắp dịp cuối năm {time.time_ns() % 10**6}"

    page.get_by_role("button", name="Gửi để phát hành").click()
    result = page.locator("#notice-result")
    result.filter(has_text="Còn thiếu: tiêu đề, nội dung, nơi nhận.").wait_for()

    page.get_by_label("Tiêu đề").fill(title)
    text = "Người dân khóa cửa, không để xe ngoài sân qua đêm."
    page.get_by_label("Nội dung thông báo").fill(text)
    page.get_by_label("Mức độ nghiêm trọng").select_option("Severe")
    page.get_by_label("Tất cả các nhóm Zalo (cần người thứ hai duyệt)").check()
    page.get_by_label("Chế độ thử (không gửi tới người dân)").check()
    page.get_by_role("button", name="Gửi để phát hành").click()
    result.filter(has_text="đang chờ một người khác duyệt").wait_for()
    waiting = page.locator("#approvals li", has_text=title)
    waiting.filter(has_text="Bạn là người soạn: cần một người khác duyệt.").wait_for()
    assert waiting.get_by_role("button").count() == 0  # an editor approves nothing
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    approver = console(DESKTOP).sign_in_only("demo-approver", code=fresh_totp_code())
    approver.page.get_by_role("link", name="Thông báo").click()
    row = approver.page.locator("#approvals li", has_text=title)
    row.filter(has_text="Bạn là người thứ hai.").wait_for()
    assert "Nghiêm trọng" in (row.text_content() or "")
    assert "tất cả các nhóm" in (row.text_content() or "")
    row.get_by_role("button", name="Duyệt và phát hành").click()
    row.wait_for(state="detached", timeout=10_000)


def test_an_editor_targets_single_groups_of_two_wards(stack: Stack, console: OpenConsole) -> None:
    """Groups ticked under one ward stay chosen while another ward's list is shown, and the
    notice broadcast stores targets exactly those groups."""
    editor = console(PHONE).sign_in_only("demo-editor")
    page = editor.page
    page.get_by_role("heading", name="Soạn thông báo").wait_for()
    title = f"Họp tổ dân phố {time.time_ns() % 10**6}"
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung thông báo").fill("Mời bà con dự họp tổ lúc 19 giờ tối nay.")
    page.get_by_text("Hoặc chọn từng nhóm Zalo").click()
    chosen = []
    for ward in ("bao-ninh", "quang-phu"):
        page.get_by_label("Xem các nhóm của").select_option(ward)
        first = page.locator(f"#notice-groups [data-ward='{ward}'] input[name=groups]").first
        first.check()
        chosen.append(first.get_attribute("value"))
    page.locator("#notice-groups-count", has_text="Đã chọn 2 nhóm.").wait_for()
    page.get_by_label("Chế độ thử (không gửi tới người dân)").check()
    page.get_by_role("button", name="Gửi để phát hành").click()
    page.locator("#notice-result").filter(has_text="Đã lưu thông báo").wait_for()
    listed = page.evaluate("window.Console.api('broadcast', '/notices?page_size=50')")
    stored = next(n for n in listed["items"] if n["title"] == title)
    assert sorted(stored["targets"]["groups"]) == sorted(chosen)
    assert not stored["targets"]["all_groups"]
    assert stored["targets"]["wards"] == []
    assert stored["created_by_name"] == "DEMO Biên tập viên"
