"""One notice's page in a real browser against the whole system: an approver sends a notice
back with a reason its editor then reads; an all-ward notice waits for a second person (the
author's own approve button is disabled, with why), is approved, and its live progress reaches
100 % on the fake Zalo; the ward officer forwards into a personal group and the progress shows
the confirmation."""

import re
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


def compose(editor: Console, title: str) -> None:
    page = editor.page
    page.goto(f"{editor.url}/#/notices")
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung thông báo").fill("Người dân khóa cửa, không để xe ngoài sân.")
    page.get_by_label("Tất cả các nhóm Zalo (cần người thứ hai duyệt)").check()
    page.get_by_role("button", name="Xem trước").click()
    # the preview is broadcast's rendering: title, body and the footer with the code
    preview = page.locator("#preview-group", has_text=title)
    preview.filter(has_text="Công an TP Đồng Hới. Mã xác thực").wait_for()
    assert (preview.text_content() or "").startswith(title)
    page.locator("#preview-title", has_text=title).wait_for()
    page.get_by_role("button", name="Gửi để phát hành").click()
    page.locator("#notice-result").filter(has_text="đang chờ một người khác duyệt").wait_for()


def open_from_approvals(person: Console, title: str) -> None:
    page = person.page
    page.goto(f"{person.url}/#/notices")
    page.locator("#approvals li", has_text=title).get_by_role("link", name=title).click()
    page.locator("#nv-title", has_text=title).wait_for()


def test_send_back_approve_progress_and_officer_forward(stack: Stack, console: OpenConsole) -> None:
    editor = console(PHONE).sign_in_only("demo-editor")
    stamp = time.time_ns() % 10**6
    returned, approved = f"Trả lại {stamp}", f"Phát hành {stamp}"
    compose(editor, returned)
    compose(editor, approved)

    # the author sees the two-person rule on the page, with no way around it
    open_from_approvals(editor, approved)
    assert editor.page.locator("#nv-decide").is_hidden()  # an editor decides nothing

    approver = console(DESKTOP).sign_in_only("demo-approver", code=fresh_totp_code())
    open_from_approvals(approver, returned)
    page = approver.page
    page.locator("#nv-approve-why", has_text="Bạn là người thứ hai").wait_for()
    page.locator("#nv-people", has_text="Người soạn: DEMO Biên tập viên").wait_for()  # a name
    page.get_by_role("button", name="Trả lại cho người soạn").click()
    page.locator("#nv-result", has_text="Hãy ghi lý do trả lại").wait_for()  # no reason: refused
    page.get_by_label("Lý do trả lại").fill("Ghi rõ thời gian áp dụng.")
    page.get_by_role("button", name="Trả lại cho người soạn").click()
    page.locator("#nv-result", has_text="Đã trả lại cho người soạn.").wait_for()

    editor.page.goto(f"{editor.url}/#/notices")
    editor.page.locator("#approvals li", has_text=returned).wait_for(state="detached")
    editor.page.locator("#approvals li", has_text=approved).wait_for()
    editor.page.goto(page.url)  # the returned notice's page: the editor reads why
    editor.page.locator(
        "#nv-returned", has_text="Bị trả lại bởi DEMO Người duyệt. Lý do: Ghi rõ thời gian áp dụng."
    ).wait_for()

    open_from_approvals(approver, approved)
    page.get_by_role("button", name="Duyệt và phát hành").click()
    page.locator("#nv-result", has_text="Đã duyệt").wait_for()
    # every group handled on the fake Zalo, without reloading; manual groups wait for officers
    page.locator("#nv-progress", has_text=re.compile(r"\(100%\)")).wait_for(timeout=120_000)
    waiting = int(re.search(r"chờ cán bộ xác nhận (\d+)", page.inner_text("#nv-progress"))[1])  # type: ignore[index]
    assert waiting >= 1
    assert page.evaluate("document.querySelector('#nv-bar').value") == 100

    officer = console(PHONE).sign_in_only("demo-officer")
    officer.page.get_by_role("link", name="Chuyển tiếp").click()
    row = officer.page.locator("#forwards li", has_text=approved)
    row.first.wait_for()
    assert "Mã xác thực" in (row.first.text_content() or "")
    assert officer.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    mine = row.count()
    assert 1 <= mine < waiting  # only the personal groups of the officer's own ward
    row.first.get_by_role("button", name="Đã chuyển tiếp").click()
    officer.page.locator("#forwards-result", has_text="Đã ghi nhận").wait_for()

    page.locator("#nv-progress", has_text=f"chờ cán bộ xác nhận {waiting - 1},").wait_for()

    # an update from the notice's page is linked to it and waits for a second person again
    # (its original needed one); the approver wrote it, so may not approve it
    page.get_by_label("Đầu đề cập nhật").fill(f"{approved} (giờ mới)")
    page.get_by_role("button", name="Gửi bản cập nhật").click()
    page.locator("#nv-title", has_text="(giờ mới)").wait_for()
    page.locator("#nv-meta", has_text="Chờ duyệt").wait_for()
    assert page.get_by_role("button", name="Duyệt và phát hành").is_disabled()
    page.locator("#nv-approve-why", has_text="Bạn là người soạn").wait_for()
    page.get_by_role("link", name="Cập nhật của thông báo gốc").click()
    page.locator("#nv-title", has_text=approved).wait_for()
    page.get_by_role("button", name="Thu hồi thông báo").click()  # armed, not yet withdrawn
    page.get_by_role("button", name="Bấm lần nữa để xác nhận thu hồi").click()
    page.locator("#nv-result", has_text="Đã thu hồi; thông báo thu hồi mã").wait_for()
    page.locator("#nv-meta", has_text="Đã hủy").wait_for()
