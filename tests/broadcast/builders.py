"""Small builders for broadcast tests."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shared.auth import token_digest

STAFF = {
    "editor-token-1": {"id": "u-editor", "name": "Biên tập", "roles": ["editor"]},
    "editor-token-2": {"id": "u-editor2", "name": "Biên tập 2", "roles": ["editor"]},
    "approver-token": {"id": "u-approver", "name": "Duyệt", "roles": ["approver", "editor"]},
    "officer-token": {"id": "u-officer", "name": "Cán bộ", "roles": ["officer"]},
}
EDITOR = {"Authorization": "Bearer editor-token-1"}
APPROVER = {"Authorization": "Bearer approver-token"}
OFFICER = {"Authorization": "Bearer officer-token"}


def staff_tokens_json() -> str:
    return json.dumps({token_digest(t): user for t, user in STAFF.items()})


def groups_csv(rows: list[dict[str, Any]]) -> str:
    header = "group_id,name,ward,hamlet,member_count,households,officer_id,officer_name,channel,active,is_test"
    lines = [header]
    for r in rows:
        lines.append(",".join(str(r.get(k, "")) for k in header.split(",")))
    return "\n".join(lines) + "\n"


def group_row(group_id: str, ward: str = "dong-hai", **extra: Any) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "name": f"Nhóm {group_id[-4:]}",
        "ward": ward,
        "member_count": 50,
        "channel": "oa",
        "active": "1",
        **extra,
    }


def notice_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Cảnh báo lừa đảo qua mạng",
        "body": "Đối tượng giả danh công an gọi điện yêu cầu chuyển tiền. Không chuyển tiền!",
        "category": "fraud_warning",
        "severity": "Severe",
        "urgency": "Expected",
        "certainty": "Likely",
        "targets": {"wards": ["dong-hai"]},
    }
    return body | overrides


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """Poll an async predicate until it returns a truthy value (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")
