"""Start-up guard: outside dev mode, no service runs on an empty or shipped secret.

Settings ignore empty variables (`env_ignore_empty`), so `ZALO_OA_SECRET_KEY=` used to fall
back silently to the test key, and a service accepted webhooks forged with it. The shipped
pseudonym and vault keys let anyone recompute published pseudonyms. Dev mode
(`BINHYEN_DEV_MODE=1`) is explicit: `make run` and the tests set it, nothing else does.
"""

import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel

log = logging.getLogger(__name__)

DEV_MODE = "BINHYEN_DEV_MODE"
# Every secret a service may hold, with the values this repository ships for it.
SHIPPED_SECRETS: dict[str, frozenset[str]] = {
    "zalo_oa_secret_key": frozenset({"test-oa-secret-key"}),
    "zalo_app_secret_key": frozenset({"test-app-secret-key"}),
    "pseudonym_key": frozenset({"change-me-pseudonym-key"}),
    "tipster_vault_key": frozenset({"change-me-tipster-vault-key"}),
    "identity_key": frozenset({"change-me-identity-key"}),
}
DEV_SECRETS_FILE = "secrets.env"  # in the run folder of `make run`
GENERATED = ("PSEUDONYM_KEY", "TIPSTER_VAULT_KEY", "IDENTITY_KEY")


def is_dev_mode(environ: Mapping[str, str]) -> bool:
    return environ.get(DEV_MODE, "").strip().lower() in {"1", "true", "yes"}


def weak_secrets(settings: BaseModel, used: Iterable[str]) -> list[str]:
    """The environment variable names of the secrets this service `used` (field names) that are
    empty or shipped. Only those it uses: compose gives each service its own (ingest has no
    token-refresh secret, the others no webhook secret)."""
    values = settings.model_dump()
    return [
        name.upper()
        for name in used
        if not str(values.get(name) or "").strip()
        or values.get(name) in SHIPPED_SECRETS.get(name, frozenset())
    ]


class WeakSecrets(SystemExit):
    """Raised at start-up: the process exits with the message naming the variables."""


def require_secrets(
    settings: BaseModel, *used: str, environ: Mapping[str, str] = os.environ
) -> None:
    """Refuse to start (outside dev mode) when a secret the service uses is empty or a shipped
    default."""
    weak = weak_secrets(settings, used)
    if not weak or is_dev_mode(environ):
        return
    message = (
        f"refusing to start: {', '.join(weak)} empty or a shipped default; set a random value "
        f"(deploy/env.example says how), or {DEV_MODE}=1 for a local demo"
    )
    log.critical(message)
    raise WeakSecrets(message)


class StaticTokens(SystemExit):
    """Raised at start-up: static staff tokens outside dev mode."""


def forbid_static_tokens(settings: BaseModel, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to start (outside dev mode) with `STAFF_TOKENS` or `STAFF_TOKENS_FILE`: a static
    token never expires and cannot be revoked without editing every service's configuration.
    Staff sign in, and machine clients get API tokens, through the identity service."""
    values = settings.model_dump()
    named = [
        name.upper()
        for name in ("staff_tokens", "staff_tokens_file")
        if str(values.get(name) or "").strip()
    ]
    if not named or is_dev_mode(environ):
        return
    message = (
        f"refusing to start: {', '.join(named)} set; static staff tokens are for tests and the "
        f"demo only ({DEV_MODE}=1). Create accounts and API tokens with the identity service "
        "(docs/security.md)"
    )
    log.critical(message)
    raise StaticTokens(message)


def dev_secrets(run_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """For `make run`: dev mode, and random keys generated once into the run folder (so a
    second run still reads the first run's pseudonyms, vault and sealed TOTP secrets); a key
    added since the file was written is generated into it then; variables already set win."""
    path = run_dir / DEV_SECRETS_FILE
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
    stored = dict(
        line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    missing = [name for name in GENERATED if name not in stored]
    if missing:
        stored |= {name: secrets.token_hex(32) for name in missing}
        lines = [f"{name}={value}" for name, value in stored.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {DEV_MODE: "1"} | {k: v for k, v in stored.items() if not environ.get(k)}
