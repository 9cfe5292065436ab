"""``fastlims catalog import/export``: YAML (grouped, for people) and CSV (one row per record).

Import validates every row first and reports every problem with the file, the row and the
field; only a clean file touches the database, in one transaction, so nothing is half-imported.
Import is an upsert by natural key (Code, or Name for use cases): running it twice changes nothing
the second time. Rows absent from the file are left alone (deactivate with ``is_active: false``).
A UUT row carries its ratings (all thirteen, checked against each other) or none: without them the
stored ratings stay as they are, so a file written before the ratings existed still imports.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.catalog.models import UUT, Standard, TestName, TestNameApplicability, UseCase
from fastlims.catalog.schemas import (
    RATING_FIELDS,
    ApplicabilityGroup,
    ApplicabilityRow,
    StandardRow,
    TestNameRow,
    UseCaseRow,
    UUTRow,
    _Row,
)

FORMAT_TAG = "fastlims-catalog/1"
CSV_COLUMNS = [
    "record",
    "code",
    "name",
    "description",
    "is_active",
    "category",
    "bench_kind",
    "nominal_duration_minutes",
    "setup_minutes",
    "teardown_minutes",
    "pausable",
    "doe",
    "test",
    "standard",
    "uut",
    "use_case",
    "applicable",
    *RATING_FIELDS,
]
# Which CSV columns each record kind uses (the rest must be empty).
CSV_FIELDS: dict[str, tuple[str, ...]] = {
    "uut": ("code", "description", "is_active", *RATING_FIELDS),
    "use_case": ("name", "description", "is_active"),
    "standard": ("code", "name", "description", "is_active"),
    "test_name": (
        "code",
        "name",
        "description",
        "category",
        "bench_kind",
        "nominal_duration_minutes",
        "setup_minutes",
        "teardown_minutes",
        "pausable",
        "is_active",
        "doe",
    ),
    "applicability": ("test", "standard", "uut", "use_case", "applicable"),
}


class CatalogFileError(ValueError):
    """Every problem found in a catalog file; nothing was imported."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n{listing}")


@dataclass
class Located:
    """A validated row and where it came from, for error messages."""

    where: str
    row: BaseModel


@dataclass
class CatalogDocument:
    uuts: list[Located] = field(default_factory=list)
    use_cases: list[Located] = field(default_factory=list)
    standards: list[Located] = field(default_factory=list)
    test_names: list[Located] = field(default_factory=list)
    applicability: list[Located] = field(default_factory=list)


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unchanged: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        if not kinds:
            return "the file holds no catalog rows"
        return "; ".join(
            f"{k}: {self.created.get(k, 0)} created, {self.updated.get(k, 0)} updated, "
            f"{self.unchanged.get(k, 0)} unchanged"
            for k in kinds
        )


def _validated(model: type[BaseModel], values: dict[str, Any], where: str, problems: list[str]) -> BaseModel | None:
    """The row, or None after adding every problem of it (each field alone, then rules between fields)."""
    try:
        row = model.model_validate(values)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(where, exc))
        return None
    if isinstance(row, _Row):
        found = row.cross_field_problems()
        problems.extend(f"{where}: field '{name}': {message}" for name, message in found)
        if found:
            return None
    return row


def _pydantic_problems(where: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(row)"
        problems.append(f"{where}: field '{loc}': {error['msg']}")
    return problems


# --- parsing ---------------------------------------------------------------------------------

_YAML_SECTIONS: dict[str, type[BaseModel]] = {
    "uuts": UUTRow,
    "use_cases": UseCaseRow,
    "standards": StandardRow,
    "test_names": TestNameRow,
    "applicability": ApplicabilityGroup,
}


def parse_yaml(text: str, path: str) -> CatalogDocument:
    problems: list[str] = []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogFileError(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise CatalogFileError(path, ["the top level must be a mapping with catalog sections"])
    if data.get("format", FORMAT_TAG) != FORMAT_TAG:
        problems.append(f"format {data.get('format')!r} is not supported; expected {FORMAT_TAG!r}")
    unknown = set(data) - set(_YAML_SECTIONS) - {"format"}
    if unknown:
        problems.append(f"unknown section(s) {sorted(unknown)}; expected {sorted(_YAML_SECTIONS)}")
    document = CatalogDocument()
    for section, model in _YAML_SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            problems.append(f"section '{section}' must be a list")
            continue
        for index, item in enumerate(items, start=1):
            where = f"{section} row {index}"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be a mapping, got {type(item).__name__}")
                continue
            key = item.get("code") or item.get("name") or item.get("test")
            if key:
                where += f" ({key})"
            row = _validated(model, item, where, problems)
            if row is None:
                continue
            if isinstance(row, ApplicabilityGroup):
                document.applicability.extend(Located(where, r) for r in row.expand())
            else:
                getattr(document, section).append(Located(where, row))
    if problems:
        raise CatalogFileError(path, problems)
    return document


_CSV_KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    "uut": ("uuts", UUTRow),
    "use_case": ("use_cases", UseCaseRow),
    "standard": ("standards", StandardRow),
    "test_name": ("test_names", TestNameRow),
    "applicability": ("applicability", ApplicabilityRow),
}


def parse_csv(text: str, path: str) -> CatalogDocument:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    header_problems = []
    if "record" not in header:
        header_problems.append("header: missing column 'record'")
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        header_problems.append(f"header: unknown column(s) {unknown}; expected some of {CSV_COLUMNS}")
    if header_problems:
        raise CatalogFileError(path, header_problems)
    problems: list[str] = []
    document = CatalogDocument()
    for raw in reader:
        line = reader.line_num
        kind = (raw.get("record") or "").strip()
        where = f"line {line} ({kind or 'no record kind'})"
        if kind not in _CSV_KINDS:
            problems.append(f"{where}: field 'record': must be one of {sorted(_CSV_KINDS)}")
            continue
        section, model = _CSV_KINDS[kind]
        allowed = CSV_FIELDS[kind]
        stray = [c for c in header if c not in allowed and c != "record" and (raw.get(c) or "").strip()]
        if stray:
            problems.append(f"{where}: field(s) {stray} do not belong to a '{kind}' record")
            continue
        values: dict[str, Any] = {c: raw[c] for c in allowed if c in raw and raw[c] not in (None, "")}
        if "doe" in values:
            try:
                values["doe"] = json.loads(values["doe"])
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: field 'doe': not valid JSON: {exc}")
                continue
        row = _validated(model, values, where, problems)
        if row is None:
            continue
        getattr(document, section).append(Located(where, row))
    if problems:
        raise CatalogFileError(path, problems)
    return document


def read_file(path: Path) -> CatalogDocument:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogFileError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise CatalogFileError(str(path), ["not UTF-8 text"]) from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    if suffix == ".csv":
        return parse_csv(text, str(path))
    raise CatalogFileError(str(path), [f"unknown file type {suffix!r}: use .yaml, .yml or .csv"])


# --- importing -------------------------------------------------------------------------------


def _duplicates(rows: Iterable[Located], key: str, label: str) -> list[str]:
    seen: dict[Any, str] = {}
    problems = []
    for located in rows:
        value = getattr(located.row, key) if key != "*" else _applicability_key(located.row)
        if value in seen:
            problems.append(f"{located.where}: {label} {value!r} also defined at {seen[value]}")
        else:
            seen[value] = located.where
    return problems


def _applicability_key(row: BaseModel) -> tuple[str, str, str, str]:
    assert isinstance(row, ApplicabilityRow)
    return (row.test, row.standard, row.uut, row.use_case)


def _upsert(
    session: Session, report: ImportReport, kind: str, existing: Any, model: type, values: dict[str, Any]
) -> Any:
    if existing is None:
        entity = model(**values)
        session.add(entity)
        report.created[kind] += 1
        return entity
    changed = False
    for name, value in values.items():
        if getattr(existing, name) != value:
            setattr(existing, name, value)
            changed = True
    (report.updated if changed else report.unchanged)[kind] += 1
    return existing


def import_document(session: Session, document: CatalogDocument, path: str) -> ImportReport:
    """Validate references, then upsert everything in the caller's transaction."""
    problems = (
        _duplicates(document.uuts, "code", "UUT code")
        + _duplicates(document.use_cases, "name", "use case")
        + _duplicates(document.standards, "code", "standard code")
        + _duplicates(document.test_names, "code", "test code")
        + _duplicates(document.applicability, "*", "applicability row")
    )
    uuts = {u.code: u for u in session.scalars(select(UUT))}
    use_cases = {u.name: u for u in session.scalars(select(UseCase))}
    standards = {s.code: s for s in session.scalars(select(Standard))}
    tests = {t.code: t for t in session.scalars(select(TestName))}
    known = {
        "test": set(tests) | {loc.row.code for loc in document.test_names},  # type: ignore[attr-defined]
        "standard": set(standards) | {loc.row.code for loc in document.standards},  # type: ignore[attr-defined]
        "uut": set(uuts) | {loc.row.code for loc in document.uuts},  # type: ignore[attr-defined]
        "use_case": set(use_cases) | {loc.row.name for loc in document.use_cases},  # type: ignore[attr-defined]
    }
    for located in document.applicability:
        row = located.row
        assert isinstance(row, ApplicabilityRow)
        for field_name in ("test", "standard", "uut", "use_case"):
            value = getattr(row, field_name)
            if value not in known[field_name]:
                problems.append(
                    f"{located.where}: field '{field_name}': {value!r} is in neither this file nor the catalog"
                )
    if problems:
        raise CatalogFileError(path, problems)

    report = ImportReport()
    for located in document.uuts:
        row = located.row
        assert isinstance(row, UUTRow)
        # A row without ratings leaves the stored ones alone (see the module docstring).
        values = row.model_dump(exclude=None if row.has_ratings() else set(RATING_FIELDS))
        uuts[row.code] = _upsert(session, report, "uuts", uuts.get(row.code), UUT, values)
    for located in document.use_cases:
        row = located.row
        assert isinstance(row, UseCaseRow)
        use_cases[row.name] = _upsert(session, report, "use_cases", use_cases.get(row.name), UseCase, row.model_dump())
    for located in document.standards:
        row = located.row
        assert isinstance(row, StandardRow)
        standards[row.code] = _upsert(session, report, "standards", standards.get(row.code), Standard, row.model_dump())
    for located in document.test_names:
        row = located.row
        assert isinstance(row, TestNameRow)
        values = row.model_dump(exclude={"doe"})
        values["doe_spec_json"] = json.dumps(row.doe, sort_keys=True) if row.doe is not None else None
        tests[row.code] = _upsert(session, report, "test_names", tests.get(row.code), TestName, values)
    session.flush()

    existing_rows = {
        (a.test_id, a.standard_id, a.uut_id, a.use_case_id): a for a in session.scalars(select(TestNameApplicability))
    }
    for located in document.applicability:
        row = located.row
        assert isinstance(row, ApplicabilityRow)
        ids = {
            "test_id": tests[row.test].id,
            "standard_id": standards[row.standard].id,
            "uut_id": uuts[row.uut].id,
            "use_case_id": use_cases[row.use_case].id,
        }
        key = (ids["test_id"], ids["standard_id"], ids["uut_id"], ids["use_case_id"])
        existing_rows[key] = _upsert(
            session,
            report,
            "applicability",
            existing_rows.get(key),
            TestNameApplicability,
            {**ids, "is_applicable": row.applicable},
        )
    session.flush()
    return report


def import_file(session: Session, path: Path) -> ImportReport:
    return import_document(session, read_file(path), str(path))


# --- exporting -------------------------------------------------------------------------------


def _snapshot(session: Session) -> dict[str, list[dict[str, Any]]]:
    uuts = [
        UUTRow.model_validate(u, from_attributes=True).model_dump(mode="json")
        for u in session.scalars(select(UUT).order_by(UUT.code))
    ]
    use_cases = [
        UseCaseRow.model_validate(u, from_attributes=True).model_dump()
        for u in session.scalars(select(UseCase).order_by(UseCase.name))
    ]
    standards = [
        StandardRow.model_validate(s, from_attributes=True).model_dump()
        for s in session.scalars(select(Standard).order_by(Standard.code))
    ]
    tests = []
    for t in session.scalars(select(TestName).order_by(TestName.code)):
        row = {name: getattr(t, name) for name in TestNameRow.model_fields if name != "doe"}
        row["bench_kind"] = t.bench_kind.value
        row["doe"] = json.loads(t.doe_spec_json) if t.doe_spec_json else None
        tests.append(row)
    applicability = [
        {
            "test": a.test.code,
            "standard": a.standard.code,
            "uut": a.uut.code,
            "use_case": a.use_case.name,
            "applicable": a.is_applicable,
        }
        for a in session.scalars(select(TestNameApplicability).order_by(TestNameApplicability.id))
    ]
    return {
        "uuts": uuts,
        "use_cases": use_cases,
        "standards": standards,
        "test_names": tests,
        "applicability": applicability,
    }


def _group_applicability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the expanded matrix into (test, standard, applicable) groups of UUTs sharing use cases."""
    by_test: dict[tuple[str, str, bool], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_test[(row["test"], row["standard"], row["applicable"])][row["uut"]].append(row["use_case"])
    groups = []
    for (test, standard, applicable), uut_map in by_test.items():
        by_cases: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for uut, cases in uut_map.items():
            by_cases[tuple(sorted(cases))].append(uut)
        for cases, uut_list in by_cases.items():
            groups.append(
                {
                    "test": test,
                    "standard": standard,
                    "uuts": sorted(uut_list),
                    "use_cases": list(cases),
                    "applicable": applicable,
                }
            )
    return groups


def export_yaml(session: Session) -> str:
    snapshot = _snapshot(session)
    for row in snapshot["test_names"]:
        if row["doe"] is None:
            del row["doe"]
    for row in snapshot["uuts"]:
        if all(row[name] is None for name in RATING_FIELDS):
            for name in RATING_FIELDS:
                del row[name]
    snapshot["applicability"] = _group_applicability(snapshot["applicability"])
    return yaml.safe_dump({"format": FORMAT_TAG, **snapshot}, sort_keys=False, allow_unicode=True, width=110)


def export_csv(session: Session) -> str:
    snapshot = _snapshot(session)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    kinds = [
        ("uut", "uuts"),
        ("use_case", "use_cases"),
        ("standard", "standards"),
        ("test_name", "test_names"),
        ("applicability", "applicability"),
    ]
    for kind, section in kinds:
        for row in snapshot[section]:
            out = {"record": kind}
            for name, value in row.items():
                if name == "doe":
                    out[name] = json.dumps(value, sort_keys=True) if value is not None else ""
                elif isinstance(value, bool):
                    out[name] = "true" if value else "false"
                else:
                    out[name] = value
            writer.writerow(out)
    return buffer.getvalue()


def export_file(session: Session, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        text = export_yaml(session)
    elif suffix == ".csv":
        text = export_csv(session)
    else:
        raise CatalogFileError(str(path), [f"unknown file type {suffix!r}: use .yaml, .yml or .csv"])
    # Write beside and rename, so a failed export never leaves a truncated file behind.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


SEED_CATALOG = Path(__file__).with_name("seed_catalog.yaml")


def load_seed(session: Session) -> ImportReport:
    """The shipped catalog (seed §5.1 UUTs, use cases, standards and their test names)."""
    return import_file(session, SEED_CATALOG)
