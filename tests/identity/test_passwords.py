"""Password rules and hashing (no server): minimum length, the common-password list copied in
with its source, Argon2id, a rehash when the parameters change, the same work for a name with
no account."""

import hashlib
import time

import pytest

from services.identity.passwords import (
    COMMON_PASSWORDS_FILE,
    Hasher,
    WeakPassword,
    check_strength,
    common_passwords,
)
from services.identity.second_factor import Sealer, matching_step, new_recovery_codes

FAST = {"time_cost": 1, "memory_kib": 8192, "parallelism": 1}


def test_the_list_is_the_copied_file() -> None:
    digest = hashlib.sha256(COMMON_PASSWORDS_FILE.read_bytes()).hexdigest()
    assert digest == "3c1baed62596de36860824eb3f436d5932d37ca8b06e59df78f5a44ec175afe4"
    assert len(common_passwords()) == 19_640
    assert (COMMON_PASSWORDS_FILE.parent / "README.md").is_file()


@pytest.mark.parametrize(
    "password",
    [
        "short",  # under the minimum
        "password1234",  # on the list
        "1q2w3e4r5t6y7u8i",  # on the list
        "Iloveyou1234!!",  # on the list once its trailing digits and marks are gone
        "aaaaaaaaaaaaaaaa",  # too few distinct characters
        "Nguyen.VanAn.2026",  # holds the name
    ],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_strength(password, 12, username="nguyen.vanan", name="Nguyen VanAn")


def test_a_long_unusual_password_is_accepted() -> None:
    check_strength("Mật khẩu riêng của tôi", 12, username="hoa.tran", name="Trần Thị Hoa")


def test_argon2id_verifies_and_rehashes_when_parameters_change() -> None:
    old = Hasher(**FAST)
    stored = old.hash("Mật khẩu riêng của tôi")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert old.verify(stored, "Mật khẩu riêng của tôi")
    # NFD input (a decomposing keyboard) is the same password.
    import unicodedata

    assert old.verify(stored, unicodedata.normalize("NFD", "Mật khẩu riêng của tôi"))
    assert not old.verify(stored, "Mật khẩu riêng của tôi!")
    assert not old.needs_rehash(stored)
    stronger = Hasher(time_cost=2, memory_kib=16384, parallelism=1)
    assert stronger.verify(stored, "Mật khẩu riêng của tôi")  # old hashes still verify
    assert stronger.needs_rehash(stored)
    assert not stronger.verify("not a hash", "x")


def test_no_account_costs_the_same_verification() -> None:
    hasher = Hasher(time_cost=2, memory_kib=32768, parallelism=1)
    stored = hasher.hash("Mật khẩu riêng của tôi")

    def timed(stored_hash: str | None) -> float:
        start = time.perf_counter()
        assert not hasher.verify(stored_hash, "sai mật khẩu")
        return time.perf_counter() - start

    with_account = min(timed(stored) for _ in range(5))
    without = min(timed(None) for _ in range(5))
    assert without > with_account * 0.7
    assert without < with_account * 1.4


def test_totp_codes_match_one_step_either_side_and_no_further() -> None:
    import pyotp

    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = totp.timecode(now)
    for offset in (-1, 0, 1):
        assert matching_step(secret, totp.generate_otp(step + offset), now) == step + offset
    for offset in (-2, 2):
        assert matching_step(secret, totp.generate_otp(step + offset), now) is None
    assert matching_step(secret, "12345", now) is None
    assert matching_step(secret, "١٢٣٤٥٦", now) is None  # non-ASCII digits


def test_sealed_secrets_and_recovery_hashes_depend_on_the_key() -> None:
    sealer, other = Sealer("key one"), Sealer("key two")
    sealed = sealer.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert sealer.open(sealed) == "JBSWY3DPEHPK3PXP"
    assert other.open(sealed) is None
    codes = new_recovery_codes()
    assert len(set(codes)) == 10
    assert sealer.code_digest(codes[0]) == sealer.code_digest(codes[0].lower().replace("-", ""))
    assert sealer.code_digest(codes[0]) != other.code_digest(codes[0])


def test_a_rotated_key_still_opens_and_matches_what_the_previous_one_made() -> None:
    old = Sealer("old key")
    sealed, code = old.seal("JBSWY3DPEHPK3PXP"), new_recovery_codes()[0]
    rotating = Sealer("new key", previous="old key")
    assert rotating.open(sealed) == "JBSWY3DPEHPK3PXP"
    assert not rotating.is_current(sealed)
    assert rotating.is_current(rotating.seal("JBSWY3DPEHPK3PXP"))
    assert old.code_digest(code) in rotating.code_digests(code)
    assert rotating.code_digest(code) != old.code_digest(code)  # new hashes use the new key
    assert Sealer("new key").open(sealed) is None  # once the previous key is gone
