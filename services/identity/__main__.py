"""`python -m services.identity`: the identity service (port 8050).

`python -m services.identity create-admin --username NAME --name "Full name"`: the first
admin (or another one), with a password typed twice at the prompt, or read from standard input
with `--password-stdin`. There is no default password and no default account: compose starts
with none, and an operator runs this once (docs/security.md). The admin then signs in and turns
on the second factor before the admin role works (`POST /me/second-factor`).
"""

import argparse
import asyncio
import getpass
import sys
from typing import Any

from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from shared.serve import serve
from shared.startup import forbid_static_tokens, require_secrets


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "create-admin":
        sys.exit(create_admin(args[1:]))
    settings = IdentitySettings()
    require_secrets(settings, "identity_key")
    forbid_static_tokens(settings)
    serve(create_app, settings, service="identity")


def create_admin(argv: list[str], settings: IdentitySettings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity create-admin")
    parser.add_argument("--username", required=True)
    parser.add_argument("--name", required=True, help="the person's full name")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)
    settings = settings or IdentitySettings()
    require_secrets(settings, "identity_key")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Mật khẩu / password: ")
        if getpass.getpass("Nhập lại / again: ") != password:
            print("Hai lần nhập không khớp / the passwords differ.", file=sys.stderr)
            return 2
    return asyncio.run(_create_admin(settings, args.username, args.name, password))


async def _create_admin(settings: IdentitySettings, username: str, name: str, password: str) -> int:
    from services.identity.accounts import Identity, IdentityError
    from shared.audit import CLI, AuditLog
    from shared.auth import Role
    from shared.identity.store import IdentityStore
    from shared.mongo import connect_mongo

    async def no_revocation(_: Any) -> None:
        return None  # a new account revokes nothing

    mongo: Any = connect_mongo(settings.mongodb_url)
    try:
        db = mongo[settings.mongodb_database]
        store = IdentityStore(db)
        await store.ensure_indexes()
        audit = AuditLog(db, "identity")
        await audit.ensure_indexes()
        identity = Identity(settings, store, audit, no_revocation)
        try:
            doc, _ = await identity.create_account(
                None, username, name, [Role.ADMIN], [], CLI, password=password
            )
        except IdentityError as exc:
            print(exc.detail, file=sys.stderr)
            return 1
    finally:
        await mongo.close()
    print(
        f"admin {doc['username']} created ({doc['_id']}). Sign in (POST /auth/sign-in or "
        "/sign-in), then turn on the second factor (POST /me/second-factor): the admin role "
        "works only in a session signed in with it."
    )
    return 0


if __name__ == "__main__":
    main()
