"""docs/benches.md is executed as docs/procedures.md is (the same doc-test tags): its calendar file
is written, its ``fastlims benches`` commands run on a fresh database and print what the page
shows, and its curl command is sent to the real app with a lab manager's token. Its bench
contract examples (``contract model=NAME``) are valid messages of their model, and its
long-running commands (``parse``: the bench emulator) parse without being run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fastlims.cli import main
from fastlims.messaging.schemas import ALL_MESSAGES
from tests.conftest import Actor
from tests.integration.test_docs_procedures import ROOT, blocks, commands, contains, curl

BENCHES_DOC = ROOT / "docs" / "benches.md"
KINDS = {"file", "cli", "output", "curl", "response", "contract", "parse"}


def parse_command(arguments: list[str], where: str) -> None:
    """Resolve ``fastlims ARGUMENTS`` to its command and parse its options (values converted and
    checked by their callbacks) without running it."""
    command: click.Command = main
    context = main.make_context("fastlims", list(arguments))
    while isinstance(command, click.Group):
        name, found, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        assert found is not None, f"{where}: no command {name!r}"
        command = found
        context = found.make_context(name or "", rest, parent=context)
    assert not context.args, f"{where}: unexpected arguments {context.args}"


def test_every_block_of_the_benches_page_is_tested() -> None:
    untested = [f"line {b.line}" for b in blocks(BENCHES_DOC.read_text()) if b.kind not in KINDS]
    assert not untested, f"blocks without a known doc-test tag: {untested}"


def test_the_benches_page_is_true(
    client: TestClient, manager: Actor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    last_output: str | None = None
    last_response: Any = None
    checked = 0
    for block in blocks(BENCHES_DOC.read_text()):
        where = f"docs/benches.md line {block.line} ({block.kind})"
        if block.kind == "file":
            (tmp_path / block.attributes["name"]).write_text(block.body + "\n")
        elif block.kind == "cli":
            runs = commands(block.body, "fastlims")
            assert runs, where
            for index, argv in enumerate(runs):
                result = CliRunner().invoke(main, argv[1:])
                wanted = int(block.attributes.get("exit", "0")) if index == len(runs) - 1 else 0
                assert result.exit_code == wanted, f"{where}: {argv}: {result.output}"
                last_output = result.output
        elif block.kind == "output":
            assert last_output == block.body + "\n", where
        elif block.kind == "curl":
            runs = commands(block.body, "curl")
            assert runs, where
            for argv in runs:
                response = curl(client, manager.token, argv)
                assert response.status_code == int(block.attributes.get("status", "200")), f"{where}: {response.text}"
                last_response = response.json()
        elif block.kind == "response":
            contains(last_response, json.loads(block.body), where)
        elif block.kind == "contract":  # a bench contract example: a valid message of its model
            ALL_MESSAGES[block.attributes["model"]].model_validate_json(block.body)
        elif block.kind == "parse":  # a long-running command: its options parse, it is not run
            runs = commands(block.body, "fastlims")
            assert runs, where
            for argv in runs:
                parse_command(argv[1:], where)
        checked += 1
    assert checked >= 9
