"""Settings of the identity service (environment variables = field names upper-case)."""

from typing import Literal

from pydantic import Field

from shared.settings import ServiceSettings, StaffAuthSettings


class IdentitySettings(ServiceSettings, StaffAuthSettings):
    """Password, session, lockout and second-factor policy, and the key that seals TOTP
    secrets and keys recovery-code hashes."""

    http_port: int = 8050

    # Seals TOTP secrets (Fernet) and keys the hashes of recovery codes. Required outside dev
    # mode (shared/startup.py); rotation: docs/security.md.
    identity_key: str = "change-me-identity-key"
    # During a rotation only: the key before, which still opens what it sealed (docs/security.md).
    identity_key_previous: str | None = None

    # Passwords: Argon2id (RFC 9106's second recommended option by default: 64 MiB, 3 passes,
    # 4 lanes). A stored hash made with other parameters is replaced at the next sign-in.
    password_min_length: int = Field(default=12, ge=8, le=64)
    argon2_time_cost: int = Field(default=3, ge=1, le=10)
    argon2_memory_kib: int = Field(default=65536, ge=8192, le=1048576)
    argon2_parallelism: int = Field(default=4, ge=1, le=16)

    # Sessions: ended after this long without a request, and this long after sign-in anyway.
    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_absolute_hours: float = Field(default=12.0, gt=0)
    # The cookie's Secure flag: "auto" sets it when the request came over HTTPS; behind a TLS
    # load balancer that speaks HTTP to the service, set "always".
    session_cookie_secure: Literal["auto", "always", "never"] = "auto"

    # Failed sign-ins: an account (a name, whether or not it exists) is locked after this many
    # failures within the window, an address after its own (higher) number; both for as long.
    signin_max_failures: int = Field(default=5, ge=1)
    signin_address_max_failures: int = Field(default=50, ge=1)
    signin_window_minutes: float = Field(default=15.0, gt=0)
    signin_lockout_minutes: float = Field(default=15.0, gt=0)

    # Proxies whose X-Forwarded-For is believed (the staff console's address, a load
    # balancer's): sign-in lockouts and the audit log then see the client behind them. None by
    # default: a client could otherwise write any address into the header.
    trusted_proxies: frozenset[str] = frozenset()

    # The name an authenticator app shows next to the account.
    totp_issuer: str = "Bình Yên"
    # How often expired sessions and stale throttle entries are deleted.
    sweep_seconds: float = Field(default=300.0, gt=0)
