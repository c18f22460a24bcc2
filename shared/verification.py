"""Notice verification codes: the contract between broadcast (issues and answers them) and
every other service that reads residents' messages (reports must not take them for tips).

Every notice ends with a short code such as `CA-7KQ2MX`; a resident who doubts that a message is
really from the police sends the code to the OA and broadcast answers whether it is genuine.
"""

import re
import secrets

from pydantic_settings import BaseSettings, SettingsConfigDict

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: read aloud safely
_CODE_RE = re.compile(r"\b([A-Z]{2})[\s\-.]?([A-Z2-9]{6})\b")


class VerificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    verification_prefix: str = "CA"  # two letters; the same in every service


def new_verification_code(prefix: str) -> str:
    """A short random code such as `CA-7KQ2MX`, printed at the end of every notice."""
    return f"{prefix}-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def find_verification_code(text: str, prefix: str) -> str | None:
    """The code a resident typed, tolerant of case, spaces and a missing dash."""
    for match in _CODE_RE.finditer(text.upper()):
        if match.group(1) == prefix:
            return f"{prefix}-{match.group(2)}"
    return None
