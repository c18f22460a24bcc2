"""Roles and wards as before, now for signed-in people and API tokens; the roles that need a
second factor (admin, approver) are refused without one; the first admin comes from a command,
never from a default password. On the real stack."""

import asyncio
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.identity.conftest import Person, enrol, new_name, new_person, stack_env
from tests.system.stack import Stack
from tools.localstack.demo_accounts import DEMO_PASSWORD
from tools.localstack.servers import REPO_ROOT
from tools.zalo_sim.__main__ import run as simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def some_case(stack: Stack, admin: Person) -> dict[str, Any]:
    """A case made from simulated citizens' messages (through the real webhook)."""
    statuses, _ = asyncio.run(
        simulate(f"{stack.url('ingest')}/webhooks/zalo", 20.0, 5, ["user_send_text"], 7)
    )
    assert statuses == {"200 published": 5}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = admin.get("reports", "/cases").json()["items"]
        if items:
            case = dict(items[0])
            case["id"] = case.get("id") or case["_id"]
            return case
        time.sleep(0.3)
    raise AssertionError("no case from the simulated messages")


def test_a_dispatcher_of_one_ward_gets_403_on_another_wards_case(
    stack: Stack, admin: Person
) -> None:
    case = some_case(stack, admin)
    other = "bac-ly" if case["ward"] != "bac-ly" else "quang-phu"
    outsider = new_person(admin, ["dispatcher"], [other])
    insider = new_person(admin, ["dispatcher"], [case["ward"]])
    assert outsider.get("reports", f"/cases/{case['id']}").status_code == 403
    assert outsider.get("reports", f"/cases?ward={case['ward']}").status_code == 403
    note = {"text": "Đã xác minh."}
    assert outsider.post("reports", f"/cases/{case['id']}/notes", json=note).status_code == 403
    assert insider.get("reports", f"/cases/{case['id']}").status_code == 200
    assert insider.post("reports", f"/cases/{case['id']}/notes", json=note).status_code == 201
    # An API token with a ward list is held to it the same way.
    token = admin.post(
        "identity", "/tokens", json={"name": "Tích hợp", "roles": ["dispatcher"], "wards": [other]}
    ).json()["secret"]
    machine = {"Authorization": f"Bearer {token}"}
    url = f"{stack.url('reports')}/cases/{case['id']}"
    assert httpx.get(url, headers=machine).status_code == 403


def all_ward_notice(editor: Person) -> str:
    body = {
        "title": "Cảnh báo giả danh công an",
        "body": "Không chuyển tiền cho người gọi điện xưng là công an.",
        "category": "fraud_warning",
        "severity": "Severe",
        "urgency": "Expected",
        "certainty": "Likely",
        "targets": {"all_groups": True},
    }
    created = editor.post("broadcast", "/notices", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending_approval"
    return str(created.json()["id"])


def test_an_approver_without_second_factor_cannot_approve(stack: Stack, admin: Person) -> None:
    editor = new_person(admin, ["editor"])
    approver = new_person(admin, ["approver"])  # signed in with a password only
    notice = all_ward_notice(editor)
    refused = approver.post("broadcast", f"/notices/{notice}/approve")
    assert refused.status_code == 403
    assert "xác thực hai bước" in refused.json()["detail"]
    me = approver.get("identity", "/auth/session").json()
    assert (me["withheld"], me["withheld_because"]) == (["approver"], "second_factor")
    # The second factor may not be turned off by an approver, and once on it works.
    enrol(approver)  # this session now counts as signed in with it
    approved = approver.post("broadcast", f"/notices/{notice}/approve")
    assert approved.status_code == 200, approved.text
    off = approver.post(
        "identity",
        "/me/second-factor/disable",
        json={"password": approver.password, "code": approver.code()},
    )
    assert off.status_code == 409
    # A new session without the code does not approve either.
    approver.http.cookies.clear()
    assert approver.sign_in(with_code=False).status_code == 401  # the code is required now
    entries = admin.get("identity", "/audit?action=notice_approved").json()
    mine = [e for e in entries if e["target"] == notice]
    assert mine
    assert mine[0]["actor_id"] == approver.id
    assert mine[0]["address"] == "127.0.0.1"
    assert mine[0]["via"] == "session"


def test_the_first_admin_comes_from_the_command_and_needs_a_second_factor(
    stack: Stack,
) -> None:
    username = new_name("chief")
    password = "Mat khau cua truong phong 2026"
    env = stack_env(stack)

    def create_admin(user: str, secret: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "services.identity",
                "create-admin",
                "--username",
                user,
                "--name",
                "Trưởng phòng",
                "--password-stdin",
            ],
            input=secret + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=60,
            check=False,
        )

    weak = create_admin(username, "password1234")
    assert weak.returncode == 1
    assert "phổ biến" in weak.stderr or "ít nhất" in weak.stderr
    done = create_admin(username, password)
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    assert create_admin(username, password).returncode == 1  # the name is taken

    chief = Person(stack, username, password)
    assert chief.sign_in().status_code == 200
    # Admin is held back until the second factor is on.
    assert chief.get("identity", "/accounts").status_code == 403
    assert chief.get("reports", "/audit").status_code == 403
    enrol(chief)
    assert chief.get("identity", "/accounts").status_code == 200
    assert chief.get("reports", "/audit").status_code == 200


def test_no_default_account_outside_make_run() -> None:
    """Compose and the image create nobody: demo accounts exist only in `make run`'s code."""
    sources = [p for p in (REPO_ROOT / "services").rglob("*.py")]
    sources += [REPO_ROOT / "deploy" / "compose.yaml", REPO_ROOT / "deploy" / "Dockerfile"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert DEMO_PASSWORD not in text, path
        assert "demo_accounts" not in text, path
