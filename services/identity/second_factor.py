"""The second factor: TOTP (RFC 6238: 30 s steps, 6 digits, SHA-1, as every authenticator app
reads it), its enrolment QR code, and single-use recovery codes.

A TOTP secret must be read back to check a code, so it is sealed (Fernet, with a key derived
from `IDENTITY_KEY`), never stored as written. A code is accepted one step either side of now
(clock drift) and only once: the step it matched is stored, and a code of that step or an
earlier one is refused, so a code seen over a shoulder cannot be used again.

Recovery codes (10, shown once) are 16 base32 characters (80 bits); each is stored as
HMAC-SHA256 under a key derived from `IDENTITY_KEY` and removed when used.
"""

import base64
import hashlib
import hmac
import io
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pyotp import utils

RECOVERY_CODES = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand


def _fernet(identity_key: str) -> Fernet:
    seal_key = hashlib.sha256(b"binhyen-totp-seal:" + identity_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(seal_key))


def _code_key(identity_key: str) -> bytes:
    return hashlib.sha256(b"binhyen-recovery:" + identity_key.encode()).digest()


class Sealer:
    """Seals TOTP secrets and keys recovery-code hashes, both from `IDENTITY_KEY`; during a
    rotation the previous key (`IDENTITY_KEY_PREVIOUS`) still opens and matches what it made,
    and a secret it sealed is sealed again with the new key at its next use."""

    def __init__(self, identity_key: str, previous: str | None = None) -> None:
        keys = [identity_key, *([previous] if previous else [])]
        self._fernet = MultiFernet([_fernet(k) for k in keys])
        self._current = _fernet(identity_key)
        self._code_keys = [_code_key(k) for k in keys]

    def seal(self, secret: str) -> str:
        return self._current.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None

    def is_current(self, sealed: str) -> bool:
        try:
            self._current.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def code_digest(self, code: str) -> str:
        """The keyed hash under the current key (what is stored from now on)."""
        return self.code_digests(code)[0]

    def code_digests(self, code: str) -> list[str]:
        """The keyed hash under each key in force, the current one first."""
        data = normalize_code(code).encode()
        return [hmac.new(key, data, hashlib.sha256).hexdigest() for key in self._code_keys]


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as an SVG document (no script, no external reference)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, now: float | None = None, window: int = 1) -> int | None:
    """The time step whose code `code` is (one step either side of now), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    found = None
    for step in range(current - window, current + window + 1):
        if utils.strings_equal(code, totp.generate_otp(step)):
            found = step
    return found


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def new_recovery_codes() -> list[str]:
    """Codes as shown: `XXXX-XXXX-XXXX-XXXX`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def looks_like_recovery_code(code: str) -> bool:
    return len(normalize_code(code)) == 16
