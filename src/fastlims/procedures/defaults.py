"""A default procedure for every catalog test name, grounded in what its standard prescribes and
parameterised by the UUT's ratings.

Values are summarised from the standards (as in the seed catalog's descriptions); the purchased
standard text always governs, and a request may replace the default with its own procedure.
Where a standard leaves a choice to the manufacturer (the charge method, the end-of-discharge
voltage) the UUT's ratings decide: CC-CV to MaxVoltageV with a C/20 taper, discharge to
MinVoltageV. Test temperatures stay inside the UUT's rated range (high ones 10 degC below its
maximum, for self-heating) except in ``abuse`` procedures, whose abuse steps may leave the
ratings on purpose within the procedure's own safety limits.

Electrical steps run on any bench; a step that needs a fixture (vibration table, crush rig,
altitude chamber, fire enclosure, ...) is an ``external`` step, wrapped in the electrical
pre-conditioning and post-test observation, and only a physical bench with that fixture can run
it. :func:`refusal` says why a bench kind cannot perform a test.

API: :func:`default_procedure`, :func:`bench_kinds`, :func:`refusal`, :func:`criterion`,
:data:`TEST_CODES`.
"""

from __future__ import annotations

from collections.abc import Collection

from fastlims.procedures import performance_tests, safety_tests
from fastlims.procedures.blocks import ISO, UL1973, UL9540, TestSpec
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import ExternalStep, Procedure
from fastlims.procedures.ratings import UutRatings

__all__ = [
    "FIXTURES",
    "TEST_CODES",
    "NoDefaultProcedure",
    "bench_kinds",
    "criterion",
    "default_procedure",
    "refusal",
]

#: The fixture an external action needs (for refusals).
FIXTURES = {
    "vibration": "a vibration table",
    "shock": "a shock machine",
    "crush": "a crush rig",
    "impact": "an impact (drop-weight) rig",
    "nail": "a nail-penetration rig",
    "drop": "a drop rig",
    "fire": "a fire-test enclosure",
    "altitude": "an altitude (vacuum) chamber",
    "immersion": "an immersion tank",
    "salt_fog": "a salt-fog chamber",
    "water_spray": "a water-spray rig",
    "other": "equipment an operator handles",
}


class NoDefaultProcedure(LookupError):
    """No default procedure exists for this test name, UUT and standard; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Every test name's default, in the catalog's order.
_TESTS: dict[str, TestSpec] = {**safety_tests.TESTS, **performance_tests.TESTS}
#: Every test name with a default procedure.
TEST_CODES: tuple[str, ...] = tuple(_TESTS)


# --------------------------------------------------------------------------- API


def _lookup(test_code: str, ratings: UutRatings, standard: str | None) -> tuple[TestSpec, str]:
    test = _TESTS.get(test_code)
    if test is None:
        raise NoDefaultProcedure(f"no default procedure for test name {test_code!r}")
    if standard is not None and standard not in test.standards:
        raise NoDefaultProcedure(
            f"{test_code} has no default procedure for standard {standard!r} (it has: {', '.join(test.standards)})"
        )
    if ratings.format not in test.formats:
        raise NoDefaultProcedure(
            f"{test_code} is {test.level_note}: it does not apply to {ratings.code} (a {ratings.format})"
        )
    return test, standard or _preferred(test, ratings)


def _preferred(test: TestSpec, r: UutRatings) -> str:
    # Cell-level standards first for cells, battery-level ones for modules and packs.
    battery_level = {UL1973, UL9540, ISO}
    for code in test.standards:
        if (code in battery_level) == (r.format != "cell"):
            return code
    return test.standards[0]


def default_procedure(test_code: str, ratings: UutRatings, *, standard: str | None = None) -> Procedure:
    """The default procedure of ``test_code`` for this UUT (and standard, else the first that fits
    the UUT's level); raises :class:`NoDefaultProcedure` with the reason when there is none."""
    test, std = _lookup(test_code, ratings, standard)
    return test.build(ratings, std)


def criterion(test_code: str, ratings: UutRatings, *, standard: str | None = None) -> Criterion | None:
    """The standard's pass/fail criterion for the outcomes' verdict (None: it states none)."""
    try:
        test, std = _lookup(test_code, ratings, standard)
    except NoDefaultProcedure:
        return None
    return test.criterion(ratings, std) if test.criterion is not None else None


def bench_kinds(procedure: Procedure, *, dt_covers: Collection[str] = ()) -> set[str]:
    """The bench kinds that can run ``procedure``: ``physical`` always; ``virtual`` unless it has
    an ``external`` step whose action the Digital Twin's models do not cover (``dt_covers``)."""
    actions = {step.action for _, step in procedure.walk() if isinstance(step, ExternalStep)}
    return {"physical"} if actions - set(dt_covers) else {"physical", "virtual"}


def refusal(
    test_code: str,
    ratings: UutRatings,
    bench_kind: str,
    *,
    standard: str | None = None,
    dt_covers: Collection[str] = (),
) -> str | None:
    """Why a bench of ``bench_kind`` (``virtual``/``physical``, any case) cannot perform the test
    on this UUT, or None when it can."""
    kind = bench_kind.strip().lower()
    if kind not in ("virtual", "physical"):
        return f"unknown bench kind {bench_kind!r}: expected virtual or physical"
    try:
        procedure = default_procedure(test_code, ratings, standard=standard)
    except NoDefaultProcedure as exc:
        return exc.reason
    if kind in bench_kinds(procedure, dt_covers=dt_covers):
        return None
    return _virtual_refusal(procedure, dt_covers)


def _virtual_refusal(procedure: Procedure, dt_covers: Collection[str]) -> str:
    actions = sorted({step.action for _, step in procedure.walk() if isinstance(step, ExternalStep)} - set(dt_covers))
    needs = "; ".join(f"{action.replace('_', ' ')} needs {FIXTURES[action]}" for action in actions)
    return f"{needs}: a virtual bench cannot run it unless the Digital Twin's models cover it"
