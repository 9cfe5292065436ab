"""Password hashing (argon2id) and API-token generation.

API tokens are 256-bit random strings; storing their SHA-256 is enough (no slow hash needed for
high-entropy secrets) and lets a lookup be one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
TOKEN_PREFIX = "flt_"  # noqa: S105 - a public prefix that makes leaked tokens greppable
MIN_PASSWORD_LENGTH = 10
# The documented demo-only credential (README): known to everyone, so never a real password.
DEMO_PASSWORD = "fastlims-demo"  # noqa: S105


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_policy(password: str, *, username: str = "", display_name: str | None = None) -> None:
    """Refuse a short password, the published demo password and one made of the user's own name
    (the first things a guesser tries); raises ValueError saying which rule failed."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    folded = password.casefold()
    if DEMO_PASSWORD in folded:
        raise ValueError("password must not contain the published demo password")
    squeezed = "".join(folded.split())
    whole = [n for n in (username, display_name or "") if len("".join(n.split())) >= 3]
    words = [w for w in (display_name or "").split() if len(w) >= 4]
    for name in whole + words:
        if "".join(name.casefold().split()) in squeezed:
            raise ValueError("password must not contain the user's own name")
