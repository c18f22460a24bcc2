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


def test_shipped_defaults_are_named() -> None:
    settings = ReportsSettings(_env_file=None)  # type: ignore[call-arg]
    assert set(weak_secrets(settings)) == {
        "ZALO_OA_SECRET_KEY",
        "ZALO_APP_SECRET_KEY",
        "PSEUDONYM_KEY",
        "TIPSTER_VAULT_KEY",
    }
    with pytest.raises(WeakSecrets, match="TIPSTER_VAULT_KEY"):
        require_secrets(settings, environ={})
    require_secrets(settings, environ={"BINHYEN_DEV_MODE": "1"})  # dev mode allows them


def test_strong_secrets_start_and_blank_ones_do_not() -> None:
    require_secrets(ReportsSettings(**STRONG), environ={})
    blank = IngestSettings(**(STRONG | {"zalo_oa_secret_key": "   "}))
    with pytest.raises(WeakSecrets, match="ZALO_OA_SECRET_KEY"):
        require_secrets(blank, environ={})


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
