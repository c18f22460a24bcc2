"""Start-up guard: outside dev mode, no service runs on an empty or shipped secret.

Settings ignore empty variables (`env_ignore_empty`), so `ZALO_OA_SECRET_KEY=` used to fall
back silently to the test key, and a service accepted webhooks forged with it. The shipped
pseudonym and vault keys let anyone recompute published pseudonyms. Dev mode
(`BINHYEN_DEV_MODE=1`) is explicit: `make run` and the tests set it, nothing else does.
"""

import logging
import os
import secrets
from collections.abc import Mapping
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
}
DEV_SECRETS_FILE = "secrets.env"  # in the run folder of `make run`
GENERATED = ("PSEUDONYM_KEY", "TIPSTER_VAULT_KEY")


def is_dev_mode(environ: Mapping[str, str]) -> bool:
    return environ.get(DEV_MODE, "").strip().lower() in {"1", "true", "yes"}


def weak_secrets(settings: BaseModel) -> list[str]:
    """The environment variable names of the settings' secrets that are empty or shipped."""
    values = settings.model_dump()
    return [
        name.upper()
        for name, shipped in SHIPPED_SECRETS.items()
        if name in values and (not str(values[name] or "").strip() or values[name] in shipped)
    ]


class WeakSecrets(SystemExit):
    """Raised at start-up: the process exits with the message naming the variables."""


def require_secrets(settings: BaseModel, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to start (outside dev mode) when a secret is empty or a shipped default."""
    weak = weak_secrets(settings)
    if not weak or is_dev_mode(environ):
        return
    message = (
        f"refusing to start: {', '.join(weak)} empty or a shipped default; set a random value "
        f"(deploy/env.example says how), or {DEV_MODE}=1 for a local demo"
    )
    log.critical(message)
    raise WeakSecrets(message)


def dev_secrets(run_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """For `make run`: dev mode, and random keys generated once into the run folder (so a
    second run still reads the first run's pseudonyms and vault); variables already set win."""
    path = run_dir / DEV_SECRETS_FILE
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{name}={secrets.token_hex(32)}" for name in GENERATED]
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stored = dict(
        line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    return {DEV_MODE: "1"} | {k: v for k, v in stored.items() if not environ.get(k)}
