"""Finding 8: outside dev mode, a service refuses to start on an empty or shipped secret."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.ingest.settings import IngestSettings
from services.reports.settings import ReportsSettings
from shared.startup import WeakSecrets, dev_secrets, require_secrets, weak_secrets

STRONG = {
    "zalo_oa_secret_key": "k" * 40,
    "zalo_app_secret_key": "a" * 40,
    "pseudonym_key": "p" * 40,
    "tipster_vault_key": "v" * 40,
}


REPORTS_USES = ("zalo_app_secret_key", "pseudonym_key", "tipster_vault_key")


def test_shipped_defaults_are_named() -> None:
    settings = ReportsSettings(_env_file=None)  # type: ignore[call-arg]
    assert set(weak_secrets(settings, [*REPORTS_USES, "zalo_oa_secret_key"])) == {
        "ZALO_OA_SECRET_KEY",
        "ZALO_APP_SECRET_KEY",
        "PSEUDONYM_KEY",
        "TIPSTER_VAULT_KEY",
    }
    with pytest.raises(WeakSecrets, match="TIPSTER_VAULT_KEY"):
        require_secrets(settings, *REPORTS_USES, environ={})
    require_secrets(settings, *REPORTS_USES, environ={"BINHYEN_DEV_MODE": "1"})  # dev mode


def test_strong_secrets_start_and_blank_ones_do_not() -> None:
    require_secrets(ReportsSettings(**STRONG), *REPORTS_USES, environ={})
    blank = IngestSettings(**(STRONG | {"zalo_oa_secret_key": "   "}))
    with pytest.raises(WeakSecrets, match="ZALO_OA_SECRET_KEY"):
        require_secrets(blank, "zalo_oa_secret_key", environ={})


def test_only_the_secrets_a_service_uses_are_required() -> None:
    """Compose gives ingest no token-refresh secret and the others no webhook secret."""
    ingest = IngestSettings(**(STRONG | {"zalo_app_secret_key": ""}))
    require_secrets(ingest, "zalo_oa_secret_key", "pseudonym_key", environ={})


def test_an_empty_variable_no_longer_falls_back_silently(tmp_path: Path) -> None:
    """The probe: ZALO_OA_SECRET_KEY= (empty) gave the test key. The process now exits,
    naming the variable, before it listens."""
    env = {k: v for k, v in os.environ.items() if k != "BINHYEN_DEV_MODE"}
    env |= {k.upper(): v for k, v in STRONG.items()} | {
        "ZALO_OA_SECRET_KEY": "",
        "SPOOL_DIR": str(tmp_path),
        "HTTP_PORT": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.ingest"],
        env=env,
        cwd=tmp_path,  # no .env file here
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ZALO_OA_SECRET_KEY" in done.stderr
    assert "PSEUDONYM_KEY" not in done.stderr


def test_make_run_generates_its_keys_once(tmp_path: Path) -> None:
    first = dev_secrets(tmp_path, environ={})
    assert first["BINHYEN_DEV_MODE"] == "1"
    assert len(first["PSEUDONYM_KEY"]) == 64
    assert first["PSEUDONYM_KEY"] != first["TIPSTER_VAULT_KEY"]
    assert dev_secrets(tmp_path, environ={}) == first  # the same keys on the next run
    assert (tmp_path / "secrets.env").stat().st_mode & 0o077 == 0
    assert "PSEUDONYM_KEY" not in dev_secrets(tmp_path, environ={"PSEUDONYM_KEY": "mine"})
    assert dev_secrets(tmp_path / "other", environ={})["PSEUDONYM_KEY"] != first["PSEUDONYM_KEY"]


def test_a_run_folder_from_before_gets_the_identity_key_added(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("PSEUDONYM_KEY=old\nTIPSTER_VAULT_KEY=older\n")
    keys = dev_secrets(tmp_path, environ={})
    assert (keys["PSEUDONYM_KEY"], keys["TIPSTER_VAULT_KEY"]) == ("old", "older")
    assert len(keys["IDENTITY_KEY"]) == 64
    assert dev_secrets(tmp_path, environ={})["IDENTITY_KEY"] == keys["IDENTITY_KEY"]


def test_the_identity_service_needs_its_own_key() -> None:
    from services.identity.settings import IdentitySettings

    with pytest.raises(WeakSecrets, match="IDENTITY_KEY"):
        require_secrets(IdentitySettings(_env_file=None), "identity_key", environ={})  # type: ignore[call-arg]
    require_secrets(IdentitySettings(identity_key="i" * 40), "identity_key", environ={})


@pytest.mark.parametrize("variable", ["staff_tokens", "staff_tokens_file"])
def test_static_staff_tokens_only_in_dev_mode(variable: str) -> None:
    """A static token can be neither revoked nor expired: outside dev mode a service refuses
    to start with one; staff sign in and machines get API tokens (identity service)."""
    from shared.startup import StaticTokens, forbid_static_tokens

    settings = ReportsSettings(
        **STRONG, **{variable: "/run/secrets/x" if "file" in variable else "{}"}
    )
    with pytest.raises(StaticTokens, match=variable.upper()):
        forbid_static_tokens(settings, environ={})
    forbid_static_tokens(settings, environ={"BINHYEN_DEV_MODE": "1"})
    forbid_static_tokens(ReportsSettings(**STRONG), environ={})
