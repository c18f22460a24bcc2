"""The `X-ZEvent-Signature` of Zalo OA webhooks.

`mac=` + lowercase hex SHA-256 of app id + raw body bytes + the payload's timestamp + OA secret
key. A plain hash of the concatenation, not an HMAC; Zalo defines it that way.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-ZEvent-Signature"
_PREFIX = "mac="


def compute_mac(app_id: str, raw_body: bytes, timestamp: str, secret_key: str) -> str:
    """The lowercase hex digest Zalo sends after `mac=`."""
    material = app_id.encode() + raw_body + timestamp.encode() + secret_key.encode()
    return hashlib.sha256(material).hexdigest()


def sign(app_id: str, raw_body: bytes, timestamp: str, secret_key: str) -> str:
    """The full header value for a body, as Zalo would send it."""
    return _PREFIX + compute_mac(app_id, raw_body, timestamp, secret_key)


def is_valid(header: str, app_id: str, raw_body: bytes, timestamp: str, secret_key: str) -> bool:
    """Constant-time check of a header value (with or without the `mac=` prefix)."""
    received = header.strip()
    if received[: len(_PREFIX)].lower() == _PREFIX:
        received = received[len(_PREFIX) :]
    expected = compute_mac(app_id, raw_body, timestamp, secret_key)
    return hmac.compare_digest(received.strip().lower().encode(), expected.encode())
