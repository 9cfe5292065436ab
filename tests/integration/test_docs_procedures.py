"""docs/procedures.md is executed: every fenced block carries a ``<!-- doc-test: KIND ... -->`` tag
and is checked as the page says (procedures parsed and resolved, curl commands sent to the real
app, CLI commands run by the real command on a fresh database, answers compared). docs/mqtt.md's
request message is the one the LIMS sends for its variables.

Kinds: ``procedure [name=N] [same-as=N] [uut=CODE]`` (json or text: parses, resolves for the UUT,
equals procedure N); ``file name=F`` (written where the CLI runs); ``cli [exit=N]`` (each
``fastlims`` command; the last exits with N); ``output`` / ``output-head`` (the last command's
output, whole or its first lines); ``curl [status=N]`` (each curl command against the app with a
real token; the last answers N); ``response`` (the last answer contains this JSON: every key given,
lists whole); ``message`` (the MQTT request message of the request the last curl created contains
this JSON).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.catalog.schemas import RATING_FIELDS
from fastlims.catalog.transfer import SEED_CATALOG
from fastlims.cli import main
from fastlims.messaging.models import OutboxMessage
from fastlims.procedures.model import Procedure, parse_json
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text
from tests.conftest import Actor

ROOT = Path(__file__).resolve().parents[2]
PROCEDURES_DOC = ROOT / "docs" / "procedures.md"
MQTT_DOC = ROOT / "docs" / "mqtt.md"
KINDS = {"procedure", "file", "cli", "output", "output-head", "curl", "response", "message"}
TAG = re.compile(r"^<!--\s*doc-test:\s*(?P<spec>.*?)\s*-->$")


@dataclass
class Block:
    line: int
    language: str
    body: str
    kind: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        return f"docs/procedures.md line {self.line} ({self.kind})"


def blocks(text: str) -> list[Block]:
    """Every fenced block with the doc-test tag on the line before it (blank lines between allowed)."""
    found: list[Block] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        if not lines[index].startswith("```"):
            index += 1
            continue
        start = index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        block = Block(start + 1, lines[start][3:].strip(), "\n".join(lines[start + 1 : end]))
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        match = TAG.match(lines[before].strip()) if before >= 0 else None
        if match:
            kind, *pairs = shlex.split(match.group("spec"))
            block.kind = kind
            block.attributes = dict(pair.split("=", 1) for pair in pairs)
        found.append(block)
        index = end + 1
    return found


def seed_ratings(code: str) -> UutRatings:
    rows = {row["code"]: row for row in yaml.safe_load(SEED_CATALOG.read_text())["uuts"]}
    return UutRatings.from_mapping({name: rows[code][name] for name in RATING_FIELDS}, code=code)


def contains(actual: Any, expected: Any, where: str = "$") -> None:
    """``actual`` has every key of ``expected`` with a matching value; lists match whole."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} in {sorted(actual)}"
            contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for index, (got, wanted) in enumerate(zip(actual, expected, strict=True)):
            contains(got, wanted, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def commands(body: str, program: str) -> list[list[str]]:
    """The shell commands of a block: each starts at a line beginning with ``program``; indented
    lines continue it (after a backslash, or inside a quoted argument)."""
    groups: list[list[str]] = []
    for line in body.split("\n"):
        if line.startswith(program):
            groups.append([line])
        elif groups and line.startswith(" "):
            groups[-1].append(line)
    return [shlex.split(re.sub(r"\\\n", " ", "\n".join(group))) for group in groups]


def curl(client: TestClient, token: str, argv: list[str]) -> Any:
    """One documented curl command, sent to the app (the host is the documented default's)."""
    assert argv[0] == "curl"
    headers: dict[str, str] = {}
    data: str | None = None
    url = ""
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "-s":
            continue
        if argument == "-H":
            name, _, value = next(arguments).partition(":")
            headers[name.strip()] = value.strip().replace("$TOKEN", token)
        elif argument == "-d":
            data = next(arguments)
        else:
            url = argument
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "127.0.0.1:8000", url
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if data is None:
        return client.get(path, headers=headers)
    return client.post(path, content=data.encode(), headers=headers)


def test_every_block_of_the_procedures_page_is_tested() -> None:
    untested = [f"line {b.line}" for b in blocks(PROCEDURES_DOC.read_text()) if b.kind not in KINDS]
    assert not untested, f"blocks without a known doc-test tag: {untested}"


def test_the_procedures_page_is_true(
    client: TestClient, system: System, requester: Actor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    named: dict[str, Procedure] = {}
    last_output: str | None = None
    last_response: Any = None
    checked = 0
    for block in blocks(PROCEDURES_DOC.read_text()):
        where = block.where()
        if block.kind == "procedure":
            if block.language == "json":
                procedure = parse_json(json.loads(block.body))
            else:
                procedure = parse_text(block.body).procedure
            resolve(procedure, seed_ratings(block.attributes.get("uut", "Gen3b - Cell")))
            if "same-as" in block.attributes:
                assert procedure == named[block.attributes["same-as"]], where
            if "name" in block.attributes:
                named[block.attributes["name"]] = procedure
        elif block.kind == "file":
            (tmp_path / block.attributes["name"]).write_text(block.body + "\n")
        elif block.kind == "cli":
            runs = commands(block.body, "fastlims")
            assert runs, where
            for index, argv in enumerate(runs):
                result = CliRunner().invoke(main, argv[1:])
                wanted = int(block.attributes.get("exit", "0")) if index == len(runs) - 1 else 0
                assert result.exit_code == wanted, f"{where}: {argv}: {result.output}"
                last_output = result.output
        elif block.kind in ("output", "output-head"):
            assert last_output is not None, where
            if block.kind == "output":
                assert last_output == block.body + "\n", where
            else:
                assert last_output.split("\n")[: len(block.body.split("\n"))] == block.body.split("\n"), where
        elif block.kind == "curl":
            runs = commands(block.body, "curl")
            assert runs, where
            for index, argv in enumerate(runs):
                response = curl(client, requester.token, argv)
                if index == len(runs) - 1 and "status" in block.attributes:
                    assert response.status_code == int(block.attributes["status"]), f"{where}: {response.text}"
                else:
                    assert response.is_success, f"{where}: {response.text}"
                last_response = response.json()
        elif block.kind == "response":
            contains(last_response, json.loads(block.body), where)
        elif block.kind == "message":
            test_uuid = last_response["test_UUID"]
            with system.database.transaction() as session:
                row = session.scalar(select(OutboxMessage).where(OutboxMessage.topic == f"requests/{test_uuid}"))
                assert row is not None, where
                message = json.loads(row.payload)
            contains(message, json.loads(block.body), where)
        checked += 1
    assert checked >= 20


def test_the_mqtt_pages_request_message_is_what_the_lims_sends(
    client: TestClient, system: System, requester: Actor
) -> None:
    """docs/mqtt.md's example: its variables submitted for its UUT give its test_procedures and UUT_ratings."""
    section = MQTT_DOC.read_text().split("## 1. A test request", 1)[1]
    example = json.loads(next(b for b in blocks(section) if b.language == "json").body)
    submitted = {**example["variables"], "test_procedures": []}  # the requester's, before the LIMS resolves
    body = {
        "uut": example["test_UUT"],
        "use_case": example["use_case"],
        "standard": example["test_standard"],
        "test_name": "PERF-CAPACITY-RT",  # the catalog code of the example's test_name
        "preferred_date": "2030-03-01T09:00",
        "bench": example["test_bench"],
        "variables": submitted,
    }
    response = client.post("/api/v1/test-requests", json=body, headers=requester.headers)
    assert response.status_code == 201, response.text
    with system.database.transaction() as session:
        row = session.scalar(
            select(OutboxMessage).where(OutboxMessage.topic == f"requests/{response.json()['test_UUID']}")
        )
        assert row is not None
        message = json.loads(row.payload)
    stable = ("test_name", "test_UUT", "test_bench", "use_case", "variables", "test_standard", "UUT_ratings")
    assert {key: message[key] for key in stable} == {key: example[key] for key in stable}
    assert set(message) == set(example)


def test_the_procedures_page_points_only_to_files_in_the_repository() -> None:
    text = PROCEDURES_DOC.read_text()
    paths = set(re.findall(r"`((?:docs|src|tests)/[^`\s]+)`", text)) | {
        f"docs/{name}" for name in re.findall(r"\]\(([\w.-]+\.md)\)", text)
    }
    assert paths and all((ROOT / path).exists() for path in paths), sorted(p for p in paths if not (ROOT / p).exists())
