"""Passwords: Argon2id hashes (argon2-cffi), a minimum length, and a list of common passwords.

The hash is the PHC string argon2-cffi writes (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`):
it names its own parameters, so a hash made with older ones still verifies and is replaced at
the next successful sign-in (`needs_rehash`). A sign-in for a name with no account verifies
against a dummy hash made with the same parameters, so it takes as long as a wrong password.
"""

import gzip
import re
import unicodedata
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

COMMON_PASSWORDS_FILE = Path(__file__).with_name("data") / "common-passwords.txt.gz"
MAX_LENGTH = 256  # bytes hashed per attempt stay bounded
_TRAILING = re.compile(r"[\d\W_]+$")


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


class WeakPassword(ValueError):
    """The reason, in Vietnamese, for the person choosing it."""


def normalize(password: str) -> str:
    """NFC, so a password typed with a composed or a decomposed Vietnamese keyboard is one."""
    return unicodedata.normalize("NFC", password)


def check_strength(password: str, min_length: int, *, username: str = "", name: str = "") -> None:
    """Raise `WeakPassword` for a password a person may not choose."""
    password = normalize(password)
    if len(password) < min_length:
        raise WeakPassword(f"Mật khẩu cần ít nhất {min_length} ký tự.")
    if len(password.encode()) > MAX_LENGTH:
        raise WeakPassword(f"Mật khẩu dài quá {MAX_LENGTH} byte.")
    lowered = password.casefold()
    common = common_passwords()
    if lowered in common or _TRAILING.sub("", lowered) in common or len(set(lowered)) < 4:
        raise WeakPassword("Mật khẩu này quá phổ biến hoặc dễ đoán; hãy chọn mật khẩu khác.")
    for own in (username, name):
        if own and own.casefold().replace(" ", "") in lowered.replace(" ", ""):
            raise WeakPassword("Mật khẩu không được chứa tên đăng nhập hoặc họ tên.")


class Hasher:
    """Argon2id with the configured parameters."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("binhyen: no such account")

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalize(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """True if `password` matches `stored`; with no stored hash, the same work on a dummy."""
        try:
            return self._hasher.verify(stored or self._dummy, normalize(password)) and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
