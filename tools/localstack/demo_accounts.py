"""DEMO staff accounts for `make run` only: one per role, with a DEMO password and, for the
roles that require a second factor (admin, approver), a DEMO TOTP secret.

Never created anywhere else: compose starts with no account, and an operator creates the first
admin with `python -m services.identity create-admin`. The accounts are written straight into
the identity store of the run (as the identity service would write them), and set back to
these values at every `make run`.

    .venv/bin/python -m tools.localstack.demo_accounts code   # the DEMO TOTP code right now
"""

import sys
from datetime import UTC, datetime
from typing import Any

import pyotp

from services.identity.passwords import Hasher
from services.identity.second_factor import Sealer
from services.identity.settings import IdentitySettings
from shared.identity.store import IdentityStore, new_id
from shared.mongo import connect_mongo

DEMO_PASSWORD = "DEMO-binhyen-matkhau"
DEMO_TOTP_SECRET = "DEMODEMOBINHYENDEMODEMOBINHYEN22"  # base32, labelled DEMO
DEMO_ACCOUNTS: tuple[dict[str, Any], ...] = (
    {"username": "demo-admin", "name": "DEMO Quản trị viên", "roles": ["admin"], "totp": True},
    {
        "username": "demo-dispatcher",
        "name": "DEMO Trực ban Quang Phú",
        "roles": ["dispatcher"],
        "wards": ["quang-phu"],
    },
    {"username": "demo-analyst", "name": "DEMO Lãnh đạo", "roles": ["analyst"]},
    {"username": "demo-editor", "name": "DEMO Biên tập viên", "roles": ["editor"]},
    {"username": "demo-registrar", "name": "DEMO Quản lý sổ nhóm", "roles": ["registrar"]},
    {"username": "demo-approver", "name": "DEMO Người duyệt", "roles": ["approver"], "totp": True},
    {
        "username": "demo-officer",
        "name": "DEMO Cán bộ xã Bảo Ninh",
        "roles": ["officer"],
        "wards": ["bao-ninh"],
    },
)


def demo_code() -> str:
    return pyotp.TOTP(DEMO_TOTP_SECRET).now()


async def create_demo_accounts(mongodb_url: str, settings: IdentitySettings) -> None:
    hasher = Hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    sealer = Sealer(settings.identity_key)
    mongo: Any = connect_mongo(mongodb_url)
    try:
        store = IdentityStore(mongo[settings.mongodb_database])
        await store.ensure_indexes()
        now = datetime.now(UTC)
        for account in DEMO_ACCOUNTS:
            values: dict[str, Any] = {
                "name": account["name"],
                "roles": account["roles"],
                "wards": account.get("wards", []),
                "active": True,
                "password_hash": hasher.hash(DEMO_PASSWORD),
                "password_change_required": False,
                "password_changed_at": now,
                "totp": (
                    {"secret": sealer.seal(DEMO_TOTP_SECRET), "enabled_at": now, "last_step": -1}
                    if account.get("totp")
                    else None
                ),
                "recovery_codes": [],
                "updated_at": now,
                "demo": True,
            }
            existing = await store.account_by_username(account["username"])
            if existing is None:
                await store.insert_account(
                    {
                        "_id": new_id("p"),
                        "username": account["username"],
                        "created_at": now,
                        "created_by": "make run (DEMO)",
                        **values,
                    }
                )
            else:
                await store.update_account(existing["_id"], values)
    finally:
        await mongo.close()


def banner_lines(identity_url: str) -> list[str]:
    names = ", ".join(a["username"] for a in DEMO_ACCOUNTS)
    return [
        f"DEMO accounts (sign in at {identity_url}/sign-in or POST {identity_url}/auth/sign-in):",
        f"  {names}",
        f"  password for each: {DEMO_PASSWORD}",
        f"  demo-admin and demo-approver also need a code: DEMO TOTP secret {DEMO_TOTP_SECRET}",
        "  (the code right now: .venv/bin/python -m tools.localstack.demo_accounts code)",
    ]


def main(argv: list[str]) -> int:
    if argv[:1] == ["code"]:
        print(demo_code())
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
