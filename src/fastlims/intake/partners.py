"""Digital Twin partners: who may upload over SFTP, with which public keys, up to what quota."""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncssh
from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.intake.models import DtPartner

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")


class PartnerError(ValueError):
    """A partner operation that cannot be done, with a message for the operator."""


@dataclass(frozen=True)
class PartnerKey:
    line: str  # "ssh-ed25519 AAAA... comment"
    fingerprint: str  # SHA256:...


def parse_public_keys(text: str, *, source: str = "key file") -> list[PartnerKey]:
    """Every public key in ``text`` (OpenSSH, one per line, or RFC 4716); refuses private keys."""
    if "PRIVATE KEY" in text:
        raise PartnerError(f"{source} holds a PRIVATE key: give the partner's public key (.pub) only")
    try:
        keys = asyncssh.import_public_key(text) if text.lstrip().startswith("----") else None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise PartnerError(f"{source} is not a public key: {exc}") from None
    found: list[PartnerKey] = []
    if keys is not None:
        return [PartnerKey(keys.export_public_key().decode().strip(), keys.get_fingerprint())]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise PartnerError(f"{source} line {number} is not an OpenSSH public key: {exc}") from None
        found.append(PartnerKey(key.export_public_key().decode().strip(), key.get_fingerprint()))
    if not found:
        raise PartnerError(f"{source} contains no public key")
    return found


def keys_of(partner: DtPartner) -> list[PartnerKey]:
    if not partner.public_keys.strip():
        return []  # a partner without SFTP (MQTT and HTTP upload only)
    return parse_public_keys(partner.public_keys, source=f"partner {partner.name}")


def get(*, session: Session, name: str) -> DtPartner | None:
    return session.scalar(select(DtPartner).where(DtPartner.name == name))


def get_all(*, session: Session) -> list[DtPartner]:
    return list(session.scalars(select(DtPartner).order_by(DtPartner.name)))


def create(
    *, session: Session, name: str, key_text: str = "", quota_bytes: int | None = None, source: str = "key file"
) -> DtPartner:
    """Add a Digital Twin partner: one name for its SFTP account (with ``key_text``'s public keys;
    none: no SFTP), its MQTT identity (``fastlims mqtt-users add NAME --role partner``) and its
    HTTP upload account (a model_uploader user bound to ``name``)."""
    if not NAME_PATTERN.match(name):
        raise PartnerError(
            f"partner name {name!r} is invalid: use 2-64 lower-case letters, digits, '_' or '-'"
            " (it is the SFTP user name and a folder name)"
        )
    if get(session=session, name=name) is not None:
        raise PartnerError(f"partner {name!r} already exists; add keys with `fastlims partners add-key`")
    if quota_bytes is not None and quota_bytes <= 0:
        raise PartnerError("the quota must be a positive number of bytes")
    keys = parse_public_keys(key_text, source=source) if key_text.strip() else []
    partner = DtPartner(name=name, public_keys="\n".join(k.line for k in keys), quota_bytes=quota_bytes)
    session.add(partner)
    session.flush()
    return partner


def add_keys(*, session: Session, name: str, key_text: str, source: str = "key file") -> DtPartner:
    partner = _existing(session, name)
    present = {k.fingerprint for k in keys_of(partner)}  # may be none: the partner's first key
    new = [k for k in parse_public_keys(key_text, source=source) if k.fingerprint not in present]
    if new:
        partner.public_keys = "\n".join([partner.public_keys.strip(), *(k.line for k in new)]).strip()
    session.flush()
    return partner


def remove_key(*, session: Session, name: str, fingerprint: str) -> DtPartner:
    partner = _existing(session, name)
    kept = [k for k in keys_of(partner) if k.fingerprint != fingerprint]
    if len(kept) == len(keys_of(partner)):
        raise PartnerError(f"partner {name!r} has no key with fingerprint {fingerprint}")
    if not kept:
        raise PartnerError(f"that is partner {name!r}'s last key: disable the partner instead")
    partner.public_keys = "\n".join(k.line for k in kept)
    session.flush()
    return partner


def set_active(*, session: Session, name: str, active: bool) -> DtPartner:
    partner = _existing(session, name)
    partner.is_active = active
    session.flush()
    return partner


def set_quota(*, session: Session, name: str, quota_bytes: int | None) -> DtPartner:
    partner = _existing(session, name)
    if quota_bytes is not None and quota_bytes <= 0:
        raise PartnerError("the quota must be a positive number of bytes")
    partner.quota_bytes = quota_bytes
    session.flush()
    return partner


def _existing(session: Session, name: str) -> DtPartner:
    partner = get(session=session, name=name)
    if partner is None:
        raise PartnerError(f"partner {name!r} does not exist; add it with `fastlims partners add`")
    return partner


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(text: str) -> int:
    """``500MB``, ``2GiB``, ``1g``, ``1048576`` → bytes."""
    match = _SIZE.match(text)
    if not match:
        raise PartnerError(f"{text!r} is not a size: write e.g. 500MB, 2GiB or a number of bytes")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    binary = "i" in unit
    letter = unit[:1] if unit[:1] in "kmgt" else ""
    factor = (1024 ** ("kmgt".index(letter) + 1)) if (binary and letter) else _UNITS[letter]
    return int(number * factor)
