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
from cryptography.fernet import Fernet, InvalidToken
from pyotp import utils

RECOVERY_CODES = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand


class Sealer:
    """Seals TOTP secrets and keys recovery-code hashes, both from `IDENTITY_KEY`."""

    def __init__(self, identity_key: str) -> None:
        seal_key = hashlib.sha256(b"binhyen-totp-seal:" + identity_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(seal_key))
        self._code_key = hashlib.sha256(b"binhyen-recovery:" + identity_key.encode()).digest()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None

    def code_digest(self, code: str) -> str:
        return hmac.new(self._code_key, normalize_code(code).encode(), hashlib.sha256).hexdigest()


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
