"""Tipster protection: the pseudonym ↔ Zalo id mapping, encrypted at rest (no I/O here)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from shared.logging import pseudonymize


class TipsterVault:
    """Encrypts Zalo user ids with a key derived from the configured secret."""

    def __init__(self, secret: str, pseudonym_key: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)
        self._pseudonym_key = pseudonym_key

    def pseudonym(self, user_id: str) -> str:
        return pseudonymize(user_id, self._pseudonym_key)

    def seal(self, user_id: str) -> str:
        return self._fernet.encrypt(user_id.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("sealed tipster id does not open with this key") from exc
