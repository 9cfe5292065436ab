"""Parsing partner keys and quotas (no database)."""

from __future__ import annotations

import asyncssh
import pytest

from fastlims.intake.partners import PartnerError, parse_public_keys, parse_size


def test_public_keys_are_parsed_and_fingerprinted() -> None:
    keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(2)]
    text = "# the DT's keys\n" + "\n".join(k.export_public_key().decode() for k in keys)
    parsed = parse_public_keys(text)
    assert [p.fingerprint for p in parsed] == [k.get_fingerprint() for k in keys]
    assert all(p.line.startswith("ssh-ed25519 ") for p in parsed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode(), "PRIVATE key"),
        ("ssh-ed25519 not-base64", "not an OpenSSH public key"),
        ("\n# nothing\n", "contains no public key"),
    ],
)
def test_bad_key_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(PartnerError, match=message):
        parse_public_keys(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("500MB", 500_000_000), ("2GiB", 2 * 1024**3), ("1.5g", 1_500_000_000), ("10k", 10_000)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_size_that_is_not_one_is_refused() -> None:
    with pytest.raises(PartnerError, match="is not a size"):
        parse_size("lots")
