"""The X-ZEvent-Signature check, against Zalo's formula and the known-answer vector."""

from pathlib import Path

import pytest

from shared.zalo.signature import compute_mac, is_valid, sign

VECTOR_DIR = Path(__file__).resolve().parents[1] / "data" / "zalo-webhooks"


def _vector() -> dict[str, str]:
    lines = (VECTOR_DIR / "signature-vector.txt").read_text(encoding="utf-8").splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}


class TestKnownAnswer:
    def test_matches_the_published_vector(self) -> None:
        vector = _vector()
        body = (VECTOR_DIR / "signature-vector.body").read_bytes()
        header = sign(vector["app_id"], body, vector["timestamp"], vector["oa_secret_key"])
        assert header == vector["X-ZEvent-Signature"]

    def test_accepts_the_header_with_and_without_prefix(self) -> None:
        vector = _vector()
        body = (VECTOR_DIR / "signature-vector.body").read_bytes()
        header = vector["X-ZEvent-Signature"]
        args = (vector["app_id"], body, vector["timestamp"], vector["oa_secret_key"])
        assert is_valid(header, *args)
        assert is_valid(header.removeprefix("mac="), *args)
        assert is_valid(header.upper().replace("MAC=", "mac="), *args)


class TestRejections:
    BODY = b'{"app_id":"1","timestamp":"1700000000000"}'

    @pytest.fixture
    def good(self) -> str:
        return sign("1", self.BODY, "1700000000000", "secret")

    def test_tampered_body(self, good: str) -> None:
        assert not is_valid(good, "1", self.BODY.replace(b"17", b"18"), "1700000000000", "secret")

    def test_wrong_key(self, good: str) -> None:
        assert not is_valid(good, "1", self.BODY, "1700000000000", "other-secret")

    def test_truncated_mac(self, good: str) -> None:
        assert not is_valid(good[:-1], "1", self.BODY, "1700000000000", "secret")
        assert not is_valid("mac=", "1", self.BODY, "1700000000000", "secret")

    def test_is_a_plain_hash_not_hmac(self) -> None:
        import hashlib

        expected = hashlib.sha256(b"1" + self.BODY + b"1700000000000" + b"secret").hexdigest()
        assert compute_mac("1", self.BODY, "1700000000000", "secret") == expected
