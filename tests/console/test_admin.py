"""The admin pages in a real browser against the whole system: staff accounts and API tokens
(identity), the group registry with its CSV preview (broadcast), the audit log with filters;
and the analytics dashboard through the console's door with the console's session."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser import CHROMIUM
from tests.console.conftest import DESKTOP, PHONE, Console, fresh_totp_code
from tests.system.stack import Stack
from tools.localstack.demo_accounts import DEMO_PASSWORD

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`"),
]

OpenConsole = Callable[[dict[str, int]], Console]
CSV_HEADER = (
    "group_id,name,ward,hamlet,member_count,households,officer_id,officer_name,channel,active,"
    "is_test"
)


def accept_dialogs(page: Page) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)


def test_an_admin_keeps_accounts_tokens_and_reads_the_audit_log(
    stack: Stack, console: OpenConsole
) -> None:
    admin = console(PHONE).sign_in_only("demo-admin", code=fresh_totp_code())
    page = admin.page
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    accept_dialogs(page)
    page.get_by_role("link", name="Quản trị").click()
    page.get_by_role("heading", name="Tài khoản cán bộ").wait_for()
    page.locator("#accounts li", has_text="demo-dispatcher").wait_for()

    # A form validates before sending.
    page.get_by_role("button", name="Tạo tài khoản").click()
    result = page.locator("#admin-result")
    result.filter(
        has_text="Còn thiếu: tên dùng để đăng nhập, họ và tên, ít nhất một vai trò."
    ).wait_for()

    username = f"can-bo-{time.time_ns() % 10**8}"
    form = page.locator("#account-form")
    form.get_by_label("Tài khoản (tên dùng để đăng nhập)").fill(username)
    form.get_by_label("Họ và tên").fill("Nguyễn Văn Thử")
    form.get_by_label("Điều phối viên (trực ban)").check()
    form.get_by_label("Quang Phú").check()
    form.get_by_role("button", name="Tạo tài khoản").click()
    secret = page.locator("#secret-value")
    secret.wait_for()
    temporary = secret.text_content() or ""
    assert len(temporary) >= 12
    page.get_by_role("button", name="Sao chép").click()
    page.locator("#secret-copied", has_text="Đã sao chép.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == temporary
    row = page.locator("#accounts li", has_text=username)
    row.filter(has_text="Điều phối viên (trực ban)").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    row.get_by_role("button", name="Sửa").click()
    form.get_by_label("Cán bộ phường/xã").check()
    form.get_by_role("button", name="Lưu thay đổi").click()
    result.filter(has_text="Đã lưu tài khoản.").wait_for()
    row.filter(has_text="Cán bộ phường/xã").wait_for()

    row.get_by_role("button", name="Khóa tài khoản").click()
    row.filter(has_text="Đã khóa").wait_for()
    row.get_by_role("button", name="Mở khóa").click()
    row.filter(has_text="Đang hoạt động").wait_for()
    row.get_by_role("button", name="Đặt lại mật khẩu").click()
    page.locator("#secret-label", has_text=f"Mật khẩu tạm mới của {username}").wait_for()
    assert (secret.text_content() or "") not in ("", temporary)

    # The service decides: an admin cannot take their own admin role away (identity: 409).
    page.locator("#accounts li", has_text="demo-admin").get_by_role("button", name="Sửa").click()
    form.get_by_label("Quản trị viên").uncheck()
    form.get_by_label("Điều phối viên (trực ban)").check()
    form.get_by_role("button", name="Lưu thay đổi").click()
    result.filter(has_text="Không tự bỏ vai trò quản trị của mình.").wait_for()
    form.get_by_role("button", name="Thôi sửa").click()

    # API tokens: the secret shown once, the list with its last use, revoke.
    page.get_by_role("link", name="Mã truy cập máy").click()
    token_form = page.locator("#token-form")
    name = f"Màn hình ki-ốt {time.time_ns() % 10**6}"
    token_form.get_by_label("Tên (dùng cho việc gì)").fill(name)
    token_form.get_by_label("Lãnh đạo, phân tích số liệu").check()
    token_form.get_by_role("button", name="Tạo mã").click()
    page.locator("#secret-label", has_text=name).wait_for()
    token_secret = secret.text_content() or ""
    token_row = page.locator("#tokens li", has_text=name)
    token_row.filter(has_text="chưa dùng").wait_for()
    # A machine client uses the token: its last use shows when the list is read again.
    used = httpx.get(
        f"{stack.url('analytics')}/metrics/overview",
        headers={"Authorization": f"Bearer {token_secret}"},
    )
    assert used.status_code == 200, used.text
    page.get_by_role("link", name="Tài khoản cán bộ").click()
    page.get_by_role("link", name="Mã truy cập máy").click()
    token_row.filter(has_text="dùng gần nhất: ").filter(has_not_text="chưa dùng").wait_for()
    token_row.get_by_role("button", name="Thu hồi").click()
    token_row.filter(has_text="Đã thu hồi").wait_for()

    # The audit log, filtered by action and by person.
    page.get_by_role("link", name="Nhật ký").click()
    audit = page.locator("#audit-filter")
    audit.get_by_label("Thao tác").select_option("token_revoked")
    audit.get_by_role("button", name="Lọc").click()
    expect(page.locator("#audit li", has_text="Tạo tài khoản")).to_have_count(0)  # filtered
    page.locator("#audit li", has_text="Thu hồi mã truy cập").first.wait_for()
    audit.get_by_label("Thao tác").select_option("")
    signed_in = httpx.post(  # another person's entry, to filter by person
        f"{stack.url('console')}/api/identity/auth/sign-in",
        json={"username": "demo-dispatcher", "password": DEMO_PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    dispatcher = "DEMO Trực ban Quang Phú"
    audit.get_by_label("Người thực hiện").select_option(label=f"{dispatcher} (demo-dispatcher)")
    audit.get_by_role("button", name="Lọc").click()
    expect(page.locator("#audit li", has_text="DEMO Quản trị viên")).to_have_count(0)
    page.locator("#audit li", has_text=f"{dispatcher} · thành công").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def check_file(page: Page, path: Path, rows: list[str]) -> None:
    """Chooses a CSV file of these rows and asks for its preview."""
    path.write_text("\n".join([CSV_HEADER, *rows]) + "\n", encoding="utf-8")
    page.get_by_label("Tệp CSV").set_input_files(str(path))
    page.get_by_role("button", name="Kiểm tra tệp").click()


def test_the_group_registry_previews_a_csv_before_importing_and_edits_a_group(
    stack: Stack, console: OpenConsole, tmp_path: Path
) -> None:
    registrar = console(DESKTOP).sign_in_only("demo-registrar")
    page = registrar.page
    page.get_by_role("link", name="Quản trị").click()
    page.get_by_role("heading", name="Sổ đăng ký nhóm Zalo").wait_for()
    assert page.get_by_role("link", name="Tài khoản cán bộ").is_hidden()  # admins only

    tag = time.time_ns() % 10**6
    bad = [
        f"t{tag}a,Tổ 1 Quang Phú,quang-phu,Tổ 1,40,,,,oa,1,0",
        f"t{tag}b,Tổ 2,ha-noi,,30,,,,oa,1,0",
        f"t{tag}c,Tổ 3,bao-ninh,,20,,,,manual,1,0",
    ]
    check_file(page, tmp_path / "bad.csv", bad)
    preview = page.locator("#import-preview")
    preview.filter(has_text="Không nhập nhóm nào: 2 dòng lỗi.").wait_for()
    assert "Dòng 3: ward: «ha-noi»" in (preview.text_content() or "")
    assert "Dòng 4: officer_id" in (preview.text_content() or "")
    assert page.locator("#import-confirm").is_hidden()
    assert page.locator("#groups li", has_text=f"t{tag}").count() == 0  # nothing stored

    good = [
        f"t{tag}a,Tổ 1 Quang Phú {tag},quang-phu,Tổ 1,40,35,,,oa,1,0",
        f"t{tag}c,Tổ 3 Bảo Ninh {tag},bao-ninh,,20,,u{tag},Cán bộ Lê,manual,1,0",
    ]
    check_file(page, tmp_path / "good.csv", good)
    preview.filter(has_text="Tệp hợp lệ: 2 nhóm. Chưa có gì được lưu.").wait_for()
    page.get_by_role("button", name="Nhập 2 nhóm vào sổ").click()
    page.locator("#admin-result", has_text="Đã nhập 2 nhóm vào sổ.").wait_for()

    page.locator("#group-filter").get_by_label("Phường/xã").select_option("bao-ninh")
    row = page.locator("#groups li", has_text=f"Tổ 3 Bảo Ninh {tag}")
    row.filter(has_text="Nhóm thường, cán bộ chuyển tiếp").wait_for()
    row.get_by_role("button", name="Sửa").click()
    form = page.locator("#group-form")
    form.get_by_label("Tên nhóm").fill(f"Tổ dân phố 3 Bảo Ninh {tag}")
    form.get_by_label("Mã Zalo cán bộ phụ trách").fill("")
    form.get_by_role("button", name="Lưu nhóm").click()
    page.locator("#admin-result", has_text="cán bộ phụ trách của nhóm thường").wait_for()
    form.get_by_label("Mã Zalo cán bộ phụ trách").fill(f"u{tag}")
    form.get_by_role("button", name="Lưu nhóm").click()
    page.locator("#groups li", has_text=f"Tổ dân phố 3 Bảo Ninh {tag}").wait_for()

    # Moving a group to another ward is broadcast's call (an admin's): its refusal is shown.
    page.locator("#groups li", has_text=f"Tổ dân phố 3 Bảo Ninh {tag}").get_by_role(
        "button", name="Sửa"
    ).click()
    form.get_by_label("Phường/xã").select_option("quang-phu")
    form.get_by_role("button", name="Lưu nhóm").click()
    page.locator("#admin-result", has_text="cần quản trị viên (admin)").wait_for()


def test_an_analyst_lands_on_the_dashboard_through_the_console(
    stack: Stack, console: OpenConsole
) -> None:
    analyst = console(PHONE).sign_in_only("demo-analyst")
    page = analyst.page
    page.get_by_role("heading", name="Bảng số liệu").wait_for()  # an analyst lands here
    page.get_by_role("link", name="Mở bảng số liệu").click()
    page.wait_for_url("**/api/analytics/dashboard")
    page.locator("body[data-loaded='1']").wait_for(timeout=30_000)  # figures, session only
    assert page.locator("[data-metric]").count() >= 8
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("link", name="← Về bàn trực").click()
    page.get_by_role("button", name="Đăng xuất").wait_for()
